"""The record of a run that a summary reports: best validation values, training time, resumes.

One owner for each of these facts, kept in the checkpoint (``state_dict``) so a
resumed run reports what an uninterrupted one would: the best validation values
seen in any process, the training time of every process added up, and the
iterations at which the run was resumed. Neither Ignite nor torch keeps such a record.

Example:
    >>> from ignite.engine import Engine
    >>> from ignite.metrics import Accuracy
    >>> from ignite_mnist.handlers.validation import attach_validation
    >>> trainer = Engine(lambda engine, batch: None)
    >>> evaluator = Engine(lambda engine, batch: None)
    >>> scores = iter([0.5, 0.9, 0.7])
    >>> _ = evaluator.add_event_handler(Events.COMPLETED, lambda e: e.state.metrics.update(accuracy=next(scores)))
    >>> record = attach_run_record(trainer)
    >>> validation = attach_validation(trainer, evaluator, [0], metrics={"accuracy": Accuracy()})  # higher: better
    >>> _ = trainer.run(range(2), max_epochs=3)
    >>> record.best
    {'val_accuracy': 0.9}
"""

from __future__ import annotations

import time
from typing import Any

from ignite.engine import Engine, Events

from ignite_mnist.events import Handlers, ValidationEvents
from ignite_mnist.handlers.state import resumable_state
from ignite_mnist.handlers.validation import VALIDATION_PREFIX, known_mode

__all__ = ["RunRecord", "attach_run_record"]




class RunRecord:
    """Best validation values (the largest, or the smallest where smaller is better), training seconds and
    resume points of a run.

    Attributes:
        best: ``{"val_accuracy": 0.97, "val_loss": 0.09}``: the best of every validation so far.
        resumed_at: trainer iterations at which this run was resumed, oldest first.
    """

    def __init__(self) -> None:
        self.best: dict[str, float] = {}
        self.resumed_at: list[int] = []
        self._seconds = 0.0  # of finished trainer runs, this process's and earlier ones'
        self._started: float | None = None
        self.handlers = Handlers()
        self.trainer: Engine | None = None

    def detach(self) -> None:
        """Stop keeping (and saving) the record."""
        self.handlers.remove()
        if self.trainer is not None:
            resumable_state(self.trainer).remove(self)

    @property
    def train_seconds(self) -> float:
        """Wall time spent in ``trainer.run`` by every process of the run, the current one up to now."""
        running = time.perf_counter() - self._started if self._started is not None else 0.0
        return self._seconds + running

    def validated(self, trainer: Engine) -> None:
        """Take the best of this validation's metrics whose better direction is known (called after each
        validation; see :func:`~ignite_mnist.handlers.validation.known_mode`)."""
        for name, value in trainer.state.metrics.items():
            mode = known_mode(trainer, name) if name.startswith(VALIDATION_PREFIX) else None
            if mode is None or not isinstance(value, (int, float)):
                continue
            if name not in self.best or (value < self.best[name] if mode == "min" else value > self.best[name]):
                self.best[name] = float(value)

    def started(self, trainer: Engine) -> None:
        self._started = time.perf_counter()
        if trainer.state.iteration > 0 and trainer.state.iteration not in self.resumed_at:
            self.resumed_at.append(trainer.state.iteration)

    def completed(self, trainer: Engine) -> None:
        self._seconds = self.train_seconds
        self._started = None

    def state_dict(self) -> dict[str, Any]:
        return {"best": dict(self.best), "train_seconds": self.train_seconds, "resumed_at": list(self.resumed_at)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.best = {str(k): float(v) for k, v in state["best"].items()}
        self._seconds = float(state["train_seconds"])
        self.resumed_at = [int(i) for i in state["resumed_at"]]


def attach_run_record(trainer: Engine) -> RunRecord:
    """Keep a :class:`RunRecord` of ``trainer``'s run, saved in its checkpoints (entry ``record``) by itself.

    It takes the best values after each validation (``ValidationEvents.VALIDATION_COMPLETED``),
    before a best checkpoint is written then, whatever the order of the attach calls.
    """
    record = RunRecord()
    if not trainer.has_registered_events(ValidationEvents.VALIDATION_COMPLETED):
        trainer.register_events(*ValidationEvents)
    record.handlers.add(trainer, ValidationEvents.VALIDATION_COMPLETED, record.validated)
    record.handlers.add(trainer, Events.STARTED, record.started)
    record.handlers.add(trainer, Events.COMPLETED, record.completed)
    resumable_state(trainer).add("record", record)
    record.trainer = trainer
    return record
