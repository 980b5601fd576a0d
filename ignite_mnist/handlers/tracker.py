"""One call for every tracker: :func:`attach_tracker` (TensorBoard, MLflow, W&B) on any Ignite trainer.

The trackers are :mod:`ignite_mnist.tracking`'s, with the managed run's
guarantees: the files go to the folder given (a run directory:
TensorBoard's event files, ``mlflow.db`` and ``mlartifacts/``, ``wandb/``); each
tracker is in the trainer's resumable state, so :func:`~ignite_mnist.handlers.resume_training`
continues the same tracked run (the W&B and MLflow run ids; TensorBoard writes
on in the same log dir, hiding what came after the checkpoint); W&B is
offline unless credentials are found (``mode="auto"``); an exception or an
interrupt out of ``trainer.run`` closes the run with that status.

Example:
    >>> import tempfile
    >>> from ignite.engine import Engine
    >>> trainer = Engine(lambda engine, batch: 0.5)
    >>> tracker = attach_tracker(trainer, "tensorboard", tempfile.mkdtemp(), log_every=2)
    >>> tracker.name, len(tracker.handles)
    ('tensorboard', 2)
    >>> detach_tracker(trainer, tracker)
    >>> tracker.handles
    []
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from ignite.engine import Engine, Events

from ignite_mnist.events import ValidationEvents
from ignite_mnist.handlers.state import resumable_state
from ignite_mnist.tracking import Tracker
from ignite_mnist.tracking.base import LoggerTracker
from ignite_mnist.tracking.mlflow import MlflowTracker
from ignite_mnist.tracking.tensorboard import TensorboardTracker
from ignite_mnist.tracking.tensorboard_settings import TensorboardSettings
from ignite_mnist.tracking.wandb import WandbTracker, wandb_init_args

__all__ = ["attach_tracker", "detach_tracker"]


class _TrainerRecord:
    """The trainer's run record as it is when asked (attach the record before or after the tracker)."""

    def __init__(self, trainer: Engine) -> None:
        self.trainer = trainer

    @property
    def best(self) -> dict[str, float]:
        record = resumable_state(self.trainer).get("record")
        if record is None:
            return {}
        record.validated(self.trainer)  # taking this validation's values twice changes nothing
        return dict(record.best)


def _build(kind: str, folder: Path, config: Mapping[str, Any] | None, log_every: int,
           options: dict[str, Any]) -> LoggerTracker:
    """The tracker ``kind`` with its files in ``folder``; ``options`` are its own settings."""
    if kind == "tensorboard":
        return TensorboardTracker(TensorboardSettings.log_dir(folder), config=config, log_every=log_every, **options)
    if kind == "mlflow":
        return MlflowTracker.in_folder(folder, uri=options.pop("tracking_uri", None),
                                       experiment=options.pop("experiment", None), params=config,
                                       log_every=log_every, **options)
    if kind == "wandb":
        mode, watch = options.pop("mode", "auto"), options.pop("watch", "off")
        init_args = wandb_init_args(config=config, dir=folder, **options)
        return WandbTracker(mode=mode, init_args=init_args, log_every=log_every, watch=watch)
    raise ValueError(f"tracker must be tensorboard, mlflow or wandb, got {kind!r}")


def attach_tracker(
    trainer: Engine,
    kind: str,
    dir: str | Path,
    *,
    evaluators: Mapping[str, Engine] | None = None,
    optimizer: torch.optim.Optimizer | None = None,
    model: torch.nn.Module | None = None,
    config: Mapping[str, Any] | None = None,
    log_every: int = 50,
    **options: Any,
) -> Tracker:
    """Track ``trainer`` with ``kind`` (``tensorboard``, ``mlflow`` or ``wandb``), its files in ``dir``.

    Logged, all at the trainer's iteration: ``train/loss`` and the learning rates of
    ``optimizer`` every ``log_every`` iterations, ``epoch/train_loss`` each epoch, each
    evaluator's metrics as ``<name>/<metric>`` (``evaluators={"val": evaluator}``);
    ``config`` as the run's settings. ``options`` are the tracker's own: W&B ``mode``
    (``auto``/``online``/``offline``/``disabled``), ``project``, ``entity``, ``name``,
    ``tags``, ``watch``; MLflow ``tracking_uri``, ``experiment``.

    Returns:
        The tracker (saved in checkpoints by itself): call ``log_test_report``, ``log_model``
        and ``finish()`` on it at the end; :func:`detach_tracker` removes it.
    """
    tracker = _build(kind, Path(dir), config, log_every, dict(options))
    if not trainer.has_registered_events(ValidationEvents.VALIDATION_COMPLETED):
        trainer.register_events(*ValidationEvents)
    record = _TrainerRecord(trainer) if kind == "wandb" else None
    tracker.attach(trainer, evaluators=evaluators, optimizer=optimizer, model=model, record=record)  # type: ignore[arg-type]
    resumable_state(trainer).add(tracker.name, tracker)
    return tracker


def detach_tracker(trainer: Engine, tracker: LoggerTracker) -> None:
    """Stop ``tracker`` logging ``trainer`` and saving its state (its run stays open until ``finish()``)."""
    for handle in tracker.handles:
        handle.remove()
    tracker.handles.clear()
    if trainer.has_event_handler(tracker.start, Events.STARTED):
        trainer.remove_event_handler(tracker.start, Events.STARTED)
    resumable_state(trainer).remove(tracker)
