"""``metrics.jsonl``: one JSON object per epoch (and per mid-epoch validation).

Epoch rows hold ``epoch``, ``iteration``, ``train_loss``, ``val_loss``,
``val_accuracy`` (``null`` when that epoch was not validated), ``lr`` and
``seconds`` (training time of the epoch, carried across a resume). Ignite has no
file logger of this kind. The log is checkpointable (the time the epoch in
progress has taken so far), so a resumed run writes the rows an uninterrupted
one would. Reading the file back is :func:`ignite_mnist.run_dir.read_metrics_log`.

Example:
    >>> import tempfile
    >>> from ignite.engine import Engine
    >>> from ignite_mnist.handlers.validation import attach_validation
    >>> from ignite_mnist.run_dir import read_metrics_log
    >>> trainer = Engine(lambda engine, batch: None)
    >>> evaluator = Engine(lambda engine, batch: None)
    >>> _ = evaluator.add_event_handler(Events.COMPLETED, lambda e: e.state.metrics.update(accuracy=0.5))
    >>> path = Path(tempfile.mkdtemp()) / "metrics.jsonl"
    >>> log = attach_metrics_log(trainer, path, attach_validation(trainer, evaluator, [0]))
    >>> _ = trainer.run(range(3), max_epochs=2)
    >>> [(row["epoch"], row["val_accuracy"]) for row in read_metrics_log(path)]
    [(1, 0.5), (2, 0.5)]
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import torch
from ignite.engine import Engine, Events

from ignite_mnist.console import note
from ignite_mnist.events import ValidationEvents
from ignite_mnist.files import append_line
from ignite_mnist.handlers.validation import VALIDATION_PREFIX, Validation
from ignite_mnist.run_dir import truncate_metrics_log

__all__ = ["MetricsLog", "attach_metrics_log"]

#: Validation columns every epoch row has (``null`` when the epoch was not validated).
EPOCH_VALIDATION_COLUMNS = (VALIDATION_PREFIX + "loss", VALIDATION_PREFIX + "accuracy")


def _plain(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        return value.item() if value.numel() == 1 else value.tolist()
    return value


class MetricsLog:
    """Appends rows to a JSON-lines file; every row is flushed at once."""

    def __init__(self, path: str | Path, validation: Validation,
                 optimizer: torch.optim.Optimizer | None = None) -> None:
        self.path = Path(path)
        self.validation = validation
        self.optimizer = optimizer
        self._epoch_started = time.perf_counter()
        self._carried_seconds = 0.0  # of the epoch in progress, from before a resume

    def write(self, row: dict[str, Any]) -> None:
        """Append one row (raises :class:`~ignite_mnist.errors.WriteError` when the file cannot be written)."""
        append_line(self.path, json.dumps({k: _plain(v) for k, v in row.items()}))

    def _lr(self) -> float | None:
        return self.optimizer.param_groups[0]["lr"] if self.optimizer is not None else None

    @staticmethod
    def _validation_metrics(engine: Engine) -> dict[str, Any]:
        return {k: v for k, v in engine.state.metrics.items() if k.startswith(VALIDATION_PREFIX)}

    def _epoch_seconds(self) -> float:
        return self._carried_seconds + time.perf_counter() - self._epoch_started

    def epoch_started(self, engine: Engine) -> None:
        self._epoch_started = time.perf_counter()
        if engine.state.iteration % (engine.state.epoch_length or 1) == 0:  # a new epoch, not a resumed one
            self._carried_seconds = 0.0

    def epoch_completed(self, engine: Engine) -> None:
        first_iteration = engine.state.iteration - (engine.state.epoch_length or 0)
        row: dict[str, Any] = {"kind": "epoch", "epoch": engine.state.epoch, "iteration": engine.state.iteration,
                               "train_loss": engine.state.metrics.get("train_loss")}
        row |= dict.fromkeys(EPOCH_VALIDATION_COLUMNS)
        if self.validation.ran_since(first_iteration):
            row |= self._validation_metrics(engine)
        row |= {"lr": self._lr(), "seconds": round(self._epoch_seconds(), 4)}
        self.write(row)

    def validation_completed(self, engine: Engine) -> None:
        if engine.state.epoch_length and engine.state.iteration % engine.state.epoch_length == 0:
            return  # the epoch row reports it
        self.write({"kind": "validation", "epoch": engine.state.epoch, "iteration": engine.state.iteration}
                   | self._validation_metrics(engine))

    def state_dict(self) -> dict[str, float]:
        return {"epoch_seconds": self._epoch_seconds()}

    def rewind(self, iteration: int) -> None:
        """Drop the rows written after ``iteration`` (a resume from there writes them again), and torn lines."""
        unreadable = truncate_metrics_log(self.path, iteration)
        if unreadable:
            note("note", f"{self.path}: dropped {unreadable} line(s) that were not complete rows (a write cut short)")

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._carried_seconds = float(state.get("epoch_seconds", 0.0))


def attach_metrics_log(
    trainer: Engine, path: str | Path, validation: Validation, optimizer: torch.optim.Optimizer | None = None
) -> MetricsLog:
    """Append a row to ``path`` after each epoch and after each mid-epoch validation.

    Attach it after :func:`~ignite_mnist.handlers.attach_validation` (whose result it
    takes) so each epoch row sees that epoch's results. With ``optimizer``, rows
    carry its learning rate.
    """
    log = MetricsLog(path, validation, optimizer)
    trainer.add_event_handler(Events.EPOCH_STARTED, log.epoch_started)
    trainer.add_event_handler(Events.EPOCH_COMPLETED, log.epoch_completed)
    trainer.add_event_handler(ValidationEvents.VALIDATION_COMPLETED, log.validation_completed)
    return log
