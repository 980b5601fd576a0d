"""Each phase of the managed run on its own: build, attach, restore, train, test and report."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

import pytest
import torch
from ignite.engine import Engine, Events

from ignite_mnist import TrainConfig
from ignite_mnist.engines import create_trainer, make_grad_scaler
from ignite_mnist.errors import Interrupted, TrainingError
from ignite_mnist.handlers import attach_checkpointing
from ignite_mnist.models import build_model
from ignite_mnist.storage.checkpoints import RNGStates, find_latest_checkpoint, load_checkpoint, restore_objects
from ignite_mnist.storage.run_dir import read_metrics_log
from ignite_mnist.training import report
from ignite_mnist.training.managed import restore, train
from ignite_mnist.training.parts import build_parts
from ignite_mnist.training.resume import plan_resume
from ignite_mnist.training.wiring import attach_run_handlers
from tests.conftest import assert_same_weights


def config(idx_root: Path, output: Path, **changes: object) -> TrainConfig:
    values = {"data_dir": str(idx_root), "output_dir": str(output), "run_name": "p", "val_size": 200, "epochs": 2,
                  "progress": "none", "wandb_mode": "disabled", "plots": False}
    return TrainConfig.from_dict(values | changes)


def test_build_creates_and_locks_the_run_dir_and_attaches_nothing(idx_root: Path, tmp_path: Path) -> None:
    with contextlib.ExitStack() as held:
        parts = build_parts(config(idx_root, tmp_path), None, held)
        assert json.loads(parts.run_dir.config_file.read_text())["run_name"] == "p"
        assert (parts.run_dir.path / ".lock").read_text().strip().isdigit()
        assert not any(parts.trainer._event_handlers.values())  # phase 2 attaches
        assert len(parts.train_loader) == 32 and parts.scaler is None


def test_attach_saves_every_stateful_handler_and_the_grad_scaler(idx_root: Path, tmp_path: Path) -> None:
    with contextlib.ExitStack() as held:
        parts = build_parts(config(idx_root, tmp_path, patience=3, lr_schedule="onecycle"), None, held)
        parts.scaler = make_grad_scaler("cpu", torch.float16)  # what a float16 GPU run builds
        handlers = attach_run_handlers(parts)
    assert set(handlers.to_save) == {
        "model", "optimizer", "trainer", "rng", "train_loader", "config", "grad_scaler", "record", "loss_averages",
        "metrics_log", "lr_scheduler", "early_stopping", "wandb", "dataset",
    }
    assert handlers.to_save["grad_scaler"] is parts.scaler


def interrupt_at(iteration: int, parts, handlers) -> None:
    """What SIGINT does, delivered after ``iteration`` (the signal check runs at the next iteration's end)."""
    parts.trainer.add_event_handler(Events.ITERATION_STARTED(once=iteration + 1),
                                    lambda _: handlers.signals._on_signal(2, None))


def test_restore_continues_the_record_averages_and_metrics_log(idx_root: Path, tmp_path: Path) -> None:
    with contextlib.ExitStack() as held:
        parts = build_parts(config(idx_root, tmp_path, run_name="whole"), None, held)
        handlers = attach_run_handlers(parts)
        interrupt_at(39, parts, handlers)
        with pytest.raises(Interrupted):
            train(parts, handlers)
    checkpoint = tmp_path / "whole" / "checkpoints" / "last_checkpoint_40.pt"
    saved = load_checkpoint(checkpoint)
    resumed_config = config(idx_root, tmp_path, run_name="whole", resume=str(checkpoint))
    with contextlib.ExitStack() as held:
        plan = plan_resume(resumed_config)
        parts = build_parts(resumed_config, plan, held)
        handlers = attach_run_handlers(parts)
        restore(parts, plan)
    assert plan.in_place and parts.trainer.state.iteration == 40
    assert handlers.record.best == saved["record"]["best"] and handlers.record.best["val_accuracy"] > 0
    assert handlers.loss_averages.state_dict() == saved["loss_averages"]
    assert [row["iteration"] for row in read_metrics_log(parts.run_dir.metrics_file)] == [32]


def test_train_reports_a_diverging_loss_with_the_last_good_checkpoint(idx_root: Path, tmp_path: Path) -> None:
    with contextlib.ExitStack() as held:
        parts = build_parts(config(idx_root, tmp_path, model="cnn", optimizer="sgd", lr=1e6), None, held)
        handlers = attach_run_handlers(parts)
        with pytest.raises(TrainingError,
                           match=r"loss became nan at iteration 3 .*No usable checkpoint was saved before"):
            train(parts, handlers)


def test_train_turns_an_interrupt_into_a_resume_command(
    idx_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # a relative --output-dir: the saved path is named once, as given
    with contextlib.ExitStack() as held:
        parts = build_parts(config(idx_root, Path("with space")), None, held)
        handlers = attach_run_handlers(parts)
        interrupt_at(4, parts, handlers)
        with pytest.raises(Interrupted) as raised:
            train(parts, handlers)
    message = str(raised.value)
    assert "checkpoint saved to with space/p/checkpoints/last_checkpoint_5.pt;" in message
    assert message.count("checkpoints") == 1 and raised.value.exit_code == 130
    assert message.endswith("--resume auto --output-dir 'with space' --run-name p")


def test_test_and_report_evaluates_once_and_stores_paths_relative_to_the_run(
    idx_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = []
    evaluate_model = report.evaluate_model
    monkeypatch.setattr(report, "evaluate_model", lambda *a, **k: calls.append(1) or evaluate_model(*a, **k))
    with contextlib.ExitStack() as held:
        parts = build_parts(config(idx_root, tmp_path, plots=True), None, held)
        handlers = attach_run_handlers(parts)
        train(parts, handlers)
        summary = report.test_and_report(parts, handlers, None)
    assert calls == [1]  # one pass over the test set feeds the summary and the plots
    on_disk = json.loads(parts.run_dir.summary_file.read_text())
    assert on_disk == summary.to_dict() and on_disk["best_checkpoint"].startswith("checkpoints/best_checkpoint_")
    assert Path(on_disk["run_dir"]).is_absolute() and (parts.run_dir.plots_dir / "misclassified.png").is_file()


def float16_trainer(seed: int) -> tuple[Engine, dict]:
    torch.manual_seed(seed)
    model = build_model("mlp")
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    scaler = make_grad_scaler("cpu", torch.float16)
    trainer = create_trainer(model, optimizer, amp=torch.float16, scaler=scaler)
    to_save = {"model": model, "optimizer": optimizer, "trainer": trainer, "grad_scaler": scaler, "rng": RNGStates()}
    return trainer, to_save


def test_float16_autocast_with_its_grad_scaler_resumes_bit_for_bit_on_cpu(tmp_path: Path) -> None:
    generator = torch.Generator().manual_seed(1)
    data = [(torch.randn(16, 1, 28, 28, generator=generator), torch.randint(0, 10, (16,), generator=generator))
            for _ in range(6)]
    whole, expected = float16_trainer(0)
    whole.run(data, max_epochs=3)

    first, to_save = float16_trainer(0)
    attach_checkpointing(first, tmp_path, to_save)  # at each epoch's end: a plain list cannot resume mid-epoch
    first.add_event_handler(Events.ITERATION_COMPLETED(once=14), lambda engine: engine.terminate())
    first.run(data, max_epochs=3)
    checkpoint = load_checkpoint(find_latest_checkpoint(tmp_path))
    assert checkpoint["trainer"]["iteration"] == 12 and checkpoint["grad_scaler"]["_growth_tracker"] == 12

    second, restored = float16_trainer(99)  # other initial weights: everything must come from the checkpoint
    restore_objects(checkpoint, restored)
    second.run(data, max_epochs=3)
    assert_same_weights(expected["model"].state_dict(), restored["model"].state_dict())
    assert restored["grad_scaler"].state_dict() == expected["grad_scaler"].state_dict()


def test_the_managed_run_attaches_trackers_and_resumes_through_the_public_kit(
    idx_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One path: ``--tracker tensorboard --resume auto`` goes through ``ignite_mnist.handlers.attach_tracker`` and
    ``resume_training``, the calls a hand-written trainer makes."""
    import ignite_mnist.handlers as kit
    from ignite_mnist.cli import main

    calls: list[str] = []
    for name in ("attach_tracker", "resume_training"):
        public = getattr(kit, name)
        monkeypatch.setattr(kit, name, lambda *args, _name=name, _public=public, **kwargs: (
            calls.append(_name), _public(*args, **kwargs))[1])
    flags = ["--data-dir", str(idx_root), "--output-dir", str(tmp_path), "--run-name", "r", "--val-size", "200",
             "--threads", "1", "--tracker", "tensorboard", "--no-plots", "--progress", "none", "--resume", "auto"]
    assert main([*flags, "--epochs", "1"]) == 0
    assert calls == ["attach_tracker"]  # a fresh start: nothing to resume
    assert main([*flags, "--epochs", "2"]) == 0
    assert calls == ["attach_tracker", "attach_tracker", "resume_training"]
