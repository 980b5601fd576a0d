"""One call for every tracker: :func:`attach_tracker` (TensorBoard, MLflow, W&B) on any Ignite trainer.

The trackers are :mod:`ignite_mnist.tracking`'s, built from the registry by their
``in_folder`` (the managed run attaches its trackers with this same call), with these
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
    >>> tracker.detach()
    >>> tracker.handles
    []
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from ignite.engine import Engine

from ignite_mnist.events import ValidationEvents
from ignite_mnist.handlers.state import resumable_state
from ignite_mnist.registry import TRACKERS
from ignite_mnist.tracking import Tracker

__all__ = ["attach_tracker", "detach_tracker"]

#: Options 0.1 named otherwise (kept one minor version): tracker -> {old name: new name}.
_RENAMED_OPTIONS = {"mlflow": {"tracking_uri": "uri"}}


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
    """Track ``trainer`` with ``kind`` (a name of :data:`~ignite_mnist.registry.TRACKERS`: ``wandb``,
    ``tensorboard``, ``mlflow``), its files in ``dir``.

    Logged, all at the trainer's iteration: ``train/loss`` and the learning rates of
    ``optimizer`` every ``log_every`` iterations, ``epoch/train_loss`` each epoch, each
    evaluator's metrics as ``<name>/<metric>`` (``evaluators={"val": evaluator}``);
    ``config`` as the run's settings; W&B's summary keeps the run record's best values.
    ``options`` are the tracker's own, named as its command-line flags without the
    prefix (``--wandb-mode`` -> ``mode``): W&B ``mode`` (``auto``/``online``/``offline``/
    ``disabled``), ``project``, ``entity``, ``name``, ``tags``, ``watch``; MLflow ``uri``,
    ``experiment``. The managed run attaches its trackers with this call too.

    Returns:
        The tracker (saved in checkpoints by itself; a new run started from another run's
        checkpoint starts its own tracked run): call ``log_test_report``, ``log_model`` and
        ``finish()`` on it at the end; ``tracker.detach()`` removes it.
    """
    if kind not in TRACKERS:
        raise ValueError(f"tracker must be one of {', '.join(TRACKERS.names)}, got {kind!r}")
    for old, new in _RENAMED_OPTIONS.get(kind, {}).items():
        if old in options:
            warnings.warn(f"attach_tracker(..., {old}=) is {new}= since ignite-mnist 0.2; {old} goes in 0.3",
                          DeprecationWarning, stacklevel=2)
            options[new] = options.pop(old)
    tracker: Tracker = TRACKERS.load(kind).in_folder(Path(dir), config=config, log_every=log_every, **options)
    if not trainer.has_registered_events(ValidationEvents.VALIDATION_COMPLETED):
        trainer.register_events(*ValidationEvents)
    tracker.attach(trainer, evaluators=evaluators, optimizer=optimizer, model=model, record=_TrainerRecord(trainer))
    state = resumable_state(trainer)
    state.add(tracker.name, tracker, own_run=True)
    tracker.on_detach(lambda: state.remove(tracker))
    return tracker


def detach_tracker(trainer: Engine, tracker: Tracker) -> None:
    """``tracker.detach()`` (kept for 0.1 code; goes in 0.3)."""
    warnings.warn("detach_tracker(trainer, tracker) is tracker.detach() since ignite-mnist 0.2; it goes in 0.3",
                  DeprecationWarning, stacklevel=2)
    tracker.detach()
