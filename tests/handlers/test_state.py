"""Resumable state that collects itself: what is saved without a hand-written to_save, what is named when it
would not be, the attach order that no longer matters, detaching, and Ignite-style events."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from ignite.engine import Engine, Events

from ignite_mnist.handlers import (
    attach_checkpointing,
    attach_early_stopping,
    attach_loss_averages,
    attach_metrics_log,
    attach_run_record,
    attach_validation,
    resumable_state,
    resume_training,
)
from ignite_mnist.handlers import state as state_module
from ignite_mnist.storage.checkpoints import find_latest_checkpoint, load_checkpoint
from ignite_mnist.storage.run_dir import read_metrics_log


@pytest.fixture(autouse=True)
def _scan_again(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test is a fresh process as far as the (once per process) scan for unsaved objects goes."""
    monkeypatch.setattr(state_module, "_SCANNED", False)


DATA = [(torch.randn(8, 4, generator=torch.Generator().manual_seed(i)), torch.tensor([i % 2] * 8)) for i in range(6)]


def training(seed: int = 0) -> tuple[Engine, Engine, torch.nn.Module, torch.optim.Optimizer]:
    torch.manual_seed(seed)
    model = torch.nn.Linear(4, 2)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)

    def step(engine: Engine, batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        optimizer.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(batch[0]), batch[1])
        loss.backward()
        optimizer.step()
        return loss.detach()

    def evaluate(engine: Engine, batch: tuple[torch.Tensor, torch.Tensor]) -> None:
        with torch.no_grad():
            engine.state.metrics["loss"] = float(torch.nn.functional.cross_entropy(model(batch[0]), batch[1]))
            engine.state.metrics["accuracy"] = float((model(batch[0]).argmax(1) == batch[1]).float().mean())

    return Engine(step), Engine(evaluate), model, optimizer


def warnings(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if "warning" in line]


def test_a_scheduler_left_out_of_the_checkpoint_is_named_in_one_line(tmp_path: Path, capsys) -> None:
    trainer, _, model, optimizer = training()
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=2)  # attached by hand, not named
    trainer.add_event_handler(Events.EPOCH_COMPLETED, lambda _: scheduler.step())
    attach_checkpointing(trainer, tmp_path, {"model": model, "optimizer": optimizer})
    trainer.run(DATA, max_epochs=2)
    (line,) = warnings(capsys.readouterr().err)
    assert line == ("ignite-mnist: warning: not saved in checkpoints, so a resume would not restore them: "
                    "StepLR (of the optimizer); name them in attach_checkpointing(..., objects={...})")


def test_a_second_optimizer_over_the_model_is_named_and_a_named_scheduler_is_not(tmp_path: Path, capsys) -> None:
    trainer, _, model, optimizer = training()
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=2)
    second = torch.optim.Adam(model.parameters())
    attach_checkpointing(trainer, tmp_path, {"model": model, "optimizer": optimizer, "scheduler": scheduler})
    trainer.run(DATA, max_epochs=1)
    (line,) = warnings(capsys.readouterr().err)
    assert ": Adam (over the model's parameters);" in line and "StepLR" not in line
    assert set(load_checkpoint(find_latest_checkpoint(tmp_path))) >= {"scheduler", "optimizer", "rng", "trainer"}
    del second


def test_everything_stateful_is_saved_and_restored_whatever_the_attach_order(tmp_path: Path, capsys) -> None:
    def attach_all(trainer: Engine, evaluator: Engine, model: torch.nn.Module, optimizer: torch.optim.Optimizer
                   ) -> None:  # the reverse of the order a reader expects: savers first, validation last
        attach_checkpointing(trainer, tmp_path / "checkpoints", {"model": model, "optimizer": optimizer},
                             event=Events.ITERATION_COMPLETED(every=4), monitor="val_loss", mode="min")
        attach_metrics_log(trainer, tmp_path / "metrics.jsonl", optimizer)
        attach_early_stopping(trainer, patience=5, monitor="val_loss", mode="min")
        attach_run_record(trainer)
        attach_loss_averages(trainer)
        attach_validation(trainer, evaluator, DATA[:2])

    trainer, evaluator, model, optimizer = training()
    attach_all(trainer, evaluator, model, optimizer)
    trainer.add_event_handler(Events.ITERATION_COMPLETED(once=10), lambda engine: engine.terminate())
    trainer.run(DATA, max_epochs=3)
    saved = load_checkpoint(find_latest_checkpoint(tmp_path / "checkpoints"))
    assert set(saved) == {"model", "optimizer", "trainer", "rng", "metrics_log", "early_stopping", "record",
                          "loss_averages", "checkpointer", "best_checkpointer"}
    assert saved["trainer"]["iteration"] == 8
    rows = read_metrics_log(tmp_path / "metrics.jsonl")
    assert [row["val_loss"] is not None and row["train_loss"] is not None for row in rows] == [True]  # epoch 1

    resumed_trainer, evaluator, resumed_model, optimizer = training(seed=1)
    attach_all(resumed_trainer, evaluator, resumed_model, optimizer)
    resumed = resume_training(tmp_path, resumed_trainer)
    assert resumed is not None and resumed.iteration == 8 and resumed.epoch == 2  # the epoch in progress
    assert resumed_trainer.state.iteration == 8 and resumable_state(resumed_trainer).get("record").best == \
        dict(saved["record"]["best"].items())
    assert torch.equal(resumed_model.weight, saved["model"]["weight"])
    assert warnings(capsys.readouterr().err) == []


def test_an_object_attached_after_the_resume_is_refused_with_what_to_move(tmp_path: Path) -> None:
    trainer, _, model, optimizer = training()
    attach_checkpointing(trainer, tmp_path, {"model": model, "optimizer": optimizer})
    attach_loss_averages(trainer)
    trainer.run(DATA, max_epochs=1)

    again, _, model, optimizer = training()
    attach_checkpointing(again, tmp_path, {"model": model, "optimizer": optimizer})
    resume_training(tmp_path, again)
    with pytest.raises(ValueError, match=r"'loss_averages' was attached after resume_training restored .*: "
                                         r"move resume_training\(\.\.\.\) below every attach_\* call"):
        attach_loss_averages(again)


def test_checkpoints_every_two_epochs_and_detached_handlers_do_nothing(tmp_path: Path) -> None:
    trainer, evaluator, model, optimizer = training()
    attach_checkpointing(trainer, tmp_path / "b", {"optimizer": optimizer}).detach()  # one checkpointer per trainer
    checkpoints = attach_checkpointing(trainer, tmp_path / "a", {"model": model}, event=Events.EPOCH_COMPLETED(every=2),
                                       monitor=None)
    validation = attach_validation(trainer, evaluator, DATA[:1])
    stopper = attach_early_stopping(trainer, patience=1)
    log = attach_metrics_log(trainer, tmp_path / "metrics.jsonl")
    for handler in (validation, stopper, log):
        handler.detach()
    trainer.run(DATA, max_epochs=5)
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == ["last_checkpoint_12.pt", "last_checkpoint_24.pt"]
    assert list((tmp_path / "b").iterdir()) == [] and not (tmp_path / "metrics.jsonl").exists()
    assert trainer.state.epoch == 5 and "val_accuracy" not in trainer.state.metrics
    assert set(load_checkpoint(checkpoints.latest_path)) == {"model", "optimizer", "trainer", "rng", "checkpointer"}


def test_an_iteration_save_on_an_epoch_end_waits_for_the_epoch_and_writes_once(tmp_path: Path, monkeypatch) -> None:
    from ignite_mnist.handlers.checkpoint import _DiskSaver

    trainer, evaluator, model, _ = training()
    attach_checkpointing(trainer, tmp_path, {"model": model},
                         event=Events.EPOCH_COMPLETED | Events.ITERATION_COMPLETED(every=3), monitor=None)
    attach_validation(trainer, evaluator, DATA[:1])
    written, write = [], _DiskSaver.__call__

    def counting(saver, checkpoint, filename, metadata=None):
        written.append((filename, "val_accuracy" in trainer.state.metrics))
        write(saver, checkpoint, filename, metadata)

    monkeypatch.setattr(_DiskSaver, "__call__", counting)
    trainer.run(DATA, max_epochs=1)
    assert written == [("last_checkpoint_3.pt", False), ("last_checkpoint_6.pt", True)]  # 6 ends the epoch: once
