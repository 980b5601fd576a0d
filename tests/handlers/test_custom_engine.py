"""The attach_* handlers on plain, hand-written Engines (no ignite-mnist trainer involved)."""

import pytest
import torch
from ignite.engine import Engine, Events

from ignite_mnist.storage.checkpoints import find_latest_checkpoint, restore_objects
from ignite_mnist.handlers import attach_checkpointing, attach_early_stopping, attach_validation, every_epochs


class ScriptedEvaluator(Engine):
    """An evaluator whose accuracy on its n-th run is scripted."""

    def __init__(self, scores):
        super().__init__(lambda engine, batch: None)
        self.scores = list(scores)
        self.runs = 0

        @self.on(Events.COMPLETED)
        def set_score(engine):
            engine.state.metrics["accuracy"] = self.scores[self.runs]
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
