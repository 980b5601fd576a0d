"""``metrics.jsonl``: one JSON object per epoch (and per mid-epoch validation).

Epoch rows hold ``epoch``, ``iteration``, ``train_loss`` (the epoch's mean),
``running_loss`` (the trainer's running average at that iteration, ``state.metrics["loss"]``
of :func:`~ignite_mnist.handlers.attach_loss_averages`; absent without it), ``val_loss``,
``val_accuracy`` (``null`` when that epoch was not validated), ``lr`` and
``seconds`` (training time of the epoch, carried across a resume). Mid-epoch validation
rows (``kind: "validation"``) hold ``epoch``, ``iteration``, ``running_loss`` and the
validation metrics: with them a run of one or two epochs still has a curve
(:func:`ignite_mnist.training.plots.plot_curves`). Ignite has no
file logger of this kind. The log is checkpointable (the time the epoch in
progress has taken so far), so a resumed run writes the rows an uninterrupted
one would. Reading the file back is :func:`ignite_mnist.storage.run_dir.read_metrics_log`.

Example:
    >>> import tempfile
    >>> from ignite.engine import Engine
    >>> from ignite_mnist.handlers.validation import attach_validation
    >>> from ignite_mnist.storage.run_dir import read_metrics_log
    >>> trainer = Engine(lambda engine, batch: None)
    >>> evaluator = Engine(lambda engine, batch: None)
    >>> _ = evaluator.add_event_handler(Events.COMPLETED, lambda e: e.state.metrics.update(accuracy=0.5))
    >>> path = Path(tempfile.mkdtemp()) / "metrics.jsonl"
    >>> log = attach_metrics_log(trainer, path)
    >>> validation = attach_validation(trainer, evaluator, [0])
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
from ignite_mnist.events import EngineEvent, Handlers, ValidationEvents
from ignite_mnist.handlers.state import REPORT, resumable_state
from ignite_mnist.handlers.validation import VALIDATION_PREFIX
from ignite_mnist.storage.files import append_line
from ignite_mnist.storage.run_dir import truncate_metrics_log

__all__ = ["MetricsLog", "attach_metrics_log"]

#: Validation columns every epoch row has (``null`` when the epoch was not validated).
EPOCH_VALIDATION_COLUMNS = (VALIDATION_PREFIX + "loss", VALIDATION_PREFIX + "accuracy")


def _plain(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        return value.item() if value.numel() == 1 else value.tolist()
    return value


class MetricsLog:
    """Appends rows to a JSON-lines file; every row is flushed at once."""

    def __init__(self, path: str | Path, optimizer: torch.optim.Optimizer | None = None) -> None:
        self.path = Path(path)
        self.optimizer = optimizer
        self.validated_at: int | None = None  # the trainer iteration of the latest validation
        self.row_event: EngineEvent = Events.EPOCH_COMPLETED
        self.trainer: Any = None
        self.handlers = Handlers()
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

    @staticmethod
    def _running_loss(engine: Engine) -> dict[str, Any]:
        running = engine.state.metrics.get("loss")
        return {} if running is None else {"running_loss": running}

    def _epoch_seconds(self) -> float:
        return self._carried_seconds + time.perf_counter() - self._epoch_started

    def epoch_started(self, engine: Engine) -> None:
        self._epoch_started = time.perf_counter()
        if engine.state.iteration % (engine.state.epoch_length or 1) == 0:  # a new epoch, not a resumed one
            self._carried_seconds = 0.0

    def epoch_completed(self, engine: Engine) -> None:
        first_iteration = engine.state.iteration - (engine.state.epoch_length or 0)
        row: dict[str, Any] = {"kind": "epoch", "epoch": engine.state.epoch, "iteration": engine.state.iteration,
                               "train_loss": engine.state.metrics.get("train_loss")} | self._running_loss(engine)
        row |= dict.fromkeys(EPOCH_VALIDATION_COLUMNS)
        if self.validated_at is not None and self.validated_at > first_iteration:
            row |= self._validation_metrics(engine)
        row |= {"lr": self._lr(), "seconds": round(self._epoch_seconds(), 4)}
        self.write(row)

    def validation_completed(self, engine: Engine) -> None:
        self.validated_at = engine.state.iteration
        if engine.state.epoch_length and engine.state.iteration % engine.state.epoch_length == 0:
            return  # the epoch row reports it
        self.write({"kind": "validation", "epoch": engine.state.epoch, "iteration": engine.state.iteration}
                   | self._running_loss(engine) | self._validation_metrics(engine))

    def state_dict(self) -> dict[str, float]:
        return {"epoch_seconds": self._epoch_seconds()}

    def attach_rows(self, trainer: Engine) -> None:
        """Write the rows at ``row_event`` (attached when the trainer starts, after validation and before the
        checkpoint saves)."""
        self.handlers.add(trainer, self.row_event, self.epoch_completed)

    def detach(self) -> None:
        """Stop writing (and saving) the log."""
        self.handlers.remove()
        state = resumable_state(self.trainer)
        state.cancel(self.attach_rows)
        state.remove(self)

    def rewind(self, iteration: int) -> None:
        """Drop the rows written after ``iteration`` (a resume from there writes them again), and torn lines."""
        unreadable = truncate_metrics_log(self.path, iteration)
        if unreadable:
            note("note", f"{self.path}: dropped {unreadable} line(s) that were not complete rows (a write cut short)")

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._carried_seconds = float(state.get("epoch_seconds", 0.0))


def attach_metrics_log(
    trainer: Engine, path: str | Path, optimizer: torch.optim.Optimizer | None = None, *,
    event: EngineEvent = Events.EPOCH_COMPLETED,
) -> MetricsLog:
    """Append a row to ``path`` at ``event`` (each epoch's end) and after each mid-epoch validation.

    Rows carry the validation metrics of a validation since the previous row (it
    listens to ``ValidationEvents.VALIDATION_COMPLETED``, so attach it before or after
    validation); with ``optimizer``, its learning rate. Saved in checkpoints (entry
    ``metrics_log``) by itself; a resume drops the rows written after its checkpoint.
    """
    log = MetricsLog(path, optimizer)
    log.trainer = trainer
    if not trainer.has_registered_events(ValidationEvents.VALIDATION_COMPLETED):
        trainer.register_events(*ValidationEvents)
    log.handlers.add(trainer, Events.EPOCH_STARTED, log.epoch_started)
    log.handlers.add(trainer, ValidationEvents.VALIDATION_COMPLETED, log.validation_completed)
    state = resumable_state(trainer)
    state.add("metrics_log", log)
    log.row_event = event
    state.defer(REPORT, log.attach_rows)
    return log
