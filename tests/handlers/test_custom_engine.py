"""The attach_* handlers on plain, hand-written Engines (no ignite-mnist trainer involved)."""

import pytest
import torch
from ignite.engine import Engine, Events

from ignite_mnist.handlers import (
    ValidationEvents,
    attach_checkpointing,
    attach_early_stopping,
    attach_loss_averages,
    attach_validation,
    every_epochs,
)
from ignite_mnist.storage.checkpoints import find_latest_checkpoint, restore_objects


class ScriptedEvaluator(Engine):
    """An evaluator whose accuracy on its n-th run is scripted."""

    def __init__(self, scores, name="accuracy"):
        super().__init__(lambda engine, batch: None)
        self.scores = list(scores)
        self.runs = 0

        @self.on(Events.COMPLETED)
        def set_score(engine):
            engine.state.metrics[name] = self.scores[self.runs]
            self.runs += 1

    def run(self, data, **kwargs):
        return super().run([0], max_epochs=1)


def make_trainer(model):
    def step(engine, batch):
        with torch.no_grad():
            model.weight.fill_(float(engine.state.epoch))  # the weights tell which epoch wrote them
        return torch.tensor(0.0)

    return Engine(step)


def test_validation_every_n_epochs_and_at_the_end():
    trainer = Engine(lambda e, b: None)
    evaluator = ScriptedEvaluator([0.1, 0.2, 0.3])
    attach_validation(trainer, evaluator, [0], event=every_epochs(3))
    seen = []
    trainer.add_event_handler(Events.EPOCH_COMPLETED, lambda e: seen.append(e.state.metrics.get("val_accuracy")))
    trainer.run([0, 1], max_epochs=7)
    assert evaluator.runs == 3  # epochs 3, 6 and the last one (7)
    assert seen == [None, None, 0.1, 0.1, 0.1, 0.2, 0.3]


def test_validation_rejects_bad_arguments():
    with pytest.raises(ValueError, match="every must be > 0"):
        every_epochs(0)


def test_early_stopping_best_k_and_best_weights_on_a_custom_engine(tmp_path):
    model = torch.nn.Linear(1, 1, bias=False)
    trainer = make_trainer(model)
    evaluator = ScriptedEvaluator([0.50, 0.90, 0.70, 0.80, 0.60, 0.95])
    handlers = attach_checkpointing(trainer, tmp_path, {"model": model}, monitor="val_accuracy", mode="max",
                                    keep_best=2)
    attach_early_stopping(trainer, patience=3, monitor="val_accuracy", mode="max")  # any order of the calls
    attach_validation(trainer, evaluator, [0])
    trainer.run([0, 1], max_epochs=6)

    assert trainer.state.epoch == 5  # no improvement on epochs 3, 4, 5 -> stopped; 0.95 never seen
    best = sorted(p.name for p in tmp_path.glob("best_*.pt"))
    assert best == ["best_checkpoint_4_accuracy=0.9000.pt", "best_checkpoint_8_accuracy=0.8000.pt"]
    best_state = torch.load(handlers.best_path, weights_only=True)
    assert best_state["model"]["weight"].item() == 2.0  # written at epoch 2, the best one
    latest = torch.load(find_latest_checkpoint(tmp_path), weights_only=True)
    assert latest["trainer"]["iteration"] == 10 and latest["early_stopping"]["counter"] == 3


def test_resume_restores_a_custom_engine_mid_epoch(tmp_path):
    model = torch.nn.Linear(1, 1, bias=False)
    trainer = make_trainer(model)
    attach_checkpointing(trainer, tmp_path, {"model": model}, event=Events.ITERATION_COMPLETED(every=3))
    trainer.add_event_handler(Events.ITERATION_COMPLETED(once=7), lambda e: e.terminate())
    trainer.run(list(range(4)), max_epochs=3)
    latest = find_latest_checkpoint(tmp_path)
    assert latest.name == "last_checkpoint_6.pt"

    fresh_model = torch.nn.Linear(1, 1, bias=False)
    fresh = make_trainer(fresh_model)
    seen = []
    fresh.add_event_handler(Events.ITERATION_COMPLETED, lambda e: seen.append((e.state.epoch, e.state.batch)))
    restore_objects(torch.load(latest, weights_only=True), {"model": fresh_model, "trainer": fresh})
    assert fresh.state.iteration == 6 and fresh_model.weight.item() == 2.0
    fresh.run(list(range(4)), max_epochs=3)
    assert [epoch for epoch, _ in seen] == [2, 2, 3, 3, 3, 3]


def stock_engines(seed: int = 0) -> tuple[Engine, Engine, torch.nn.Module, list]:
    """Ignite's own ``create_supervised_trainer`` (its output is ``loss.item()``, a float) and evaluator."""
    from ignite.engine import create_supervised_evaluator, create_supervised_trainer
    from ignite.metrics import Accuracy, Loss

    torch.manual_seed(seed)
    model = torch.nn.Sequential(torch.nn.Linear(4, 2), torch.nn.LogSoftmax(dim=1))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
    trainer = create_supervised_trainer(model, optimizer, torch.nn.functional.nll_loss)
    evaluator = create_supervised_evaluator(
        model, metrics={"accuracy": Accuracy(), "nll": Loss(torch.nn.functional.nll_loss)})
    generator = torch.Generator().manual_seed(seed)
    data = [(torch.randn(16, 4, generator=generator), torch.randint(0, 2, (16,), generator=generator))
            for _ in range(4)]
    return trainer, evaluator, model, data


def test_ignite_stock_engines_get_loss_averages_and_a_val_nll_monitor_keeps_the_lowest(tmp_path):
    """No ``metrics=`` and no ``mode=``: the Loss attached to the evaluator says lower is better."""
    trainer, evaluator, model, data = stock_engines()
    averages = attach_loss_averages(trainer)
    attach_validation(trainer, evaluator, data[:2])
    nlls: list[float] = []
    trainer.add_event_handler(ValidationEvents.VALIDATION_COMPLETED,
                              lambda engine: nlls.append(engine.state.metrics["val_nll"]))
    attach_checkpointing(trainer, tmp_path, {"model": model}, monitor="val_nll", keep_best=2)
    stopper = attach_early_stopping(trainer, patience=5, monitor="val_nll")
    trainer.run(data, max_epochs=6)
    assert isinstance(trainer.state.output, float) and trainer.state.metrics["train_loss"] > 0
    assert averages.state_dict()["count"] == 4
    lowest = sorted(range(6), key=lambda epoch: nlls[epoch])[:2]
    assert sorted(p.name for p in tmp_path.glob("best_*")) == sorted(
        f"best_checkpoint_{4 * (epoch + 1)}_nll={-nlls[epoch]:.4f}.pt" for epoch in lowest)
    assert stopper.mode == "min" and stopper.best_score == pytest.approx(min(nlls))


def test_a_monitor_nothing_tells_the_direction_of_is_asked_for_in_one_line(tmp_path):
    trainer = make_trainer(torch.nn.Linear(1, 1, bias=False))
    attach_checkpointing(trainer, tmp_path, {"model": torch.nn.Linear(1, 1)}, monitor="val_score")
    attach_validation(trainer, ScriptedEvaluator([0.5, 0.6], name="score"), [0])
    with pytest.raises(ValueError, match=r"^cannot tell whether a lower or a higher val_score is better: pass "
                                         r"mode='min' or mode='max'"):
        trainer.run([0, 1], max_epochs=2)
    assert not list(tmp_path.glob("best_*"))
