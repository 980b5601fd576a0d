"""Phase 2 of a run: attach the handlers to the engines, from the same public ``attach_*`` a custom trainer uses.

Every handler comes from :mod:`ignite_mnist.handlers` and the trackers from
:mod:`ignite_mnist.tracking`; this module only decides which ones a config asks
for, in which order, and which objects a checkpoint saves. The order matters
where handlers share an event: at an epoch's end the loss averages come first
(``train_loss``), then validation, the run record, early stopping, the metrics log,
the trackers, the checkpoint (which then holds all of them), the progress line,
and last the signal check (so an interrupt saves a state that includes the epoch).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ignite.handlers import EarlyStopping, ParamScheduler

from ignite_mnist.checkpoints import ConfigState
from ignite_mnist.data import DatasetInfo
from ignite_mnist.distributed import RankRNGStates
from ignite_mnist.handlers import (
    CheckpointHandlers,
    LossAverages,
    MetricsLog,
    NonFiniteLossStop,
    Progress,
    RunRecord,
    SignalCheckpoint,
    Validation,
    attach_checkpointing,
    attach_early_stopping,
    attach_loss_averages,
    attach_lr_schedule,
    attach_metrics_log,
    attach_nan_stop,
    attach_progress,
    attach_run_record,
    attach_signal_checkpoint,
    attach_validation,
)
from ignite_mnist.handlers.validation import VALIDATION_PREFIX
from ignite_mnist.parts import RunParts
from ignite_mnist.registry import NO_TRACKER, TRACKERS, lower_is_better
from ignite_mnist.tracking import Tracker

__all__ = ["AttachHook", "RunHandlers", "attach_run_handlers", "build_trackers"]


@dataclass
class RunHandlers:
    """What phase 2 attached to a run's engines, and the objects its checkpoints save (``to_save``)."""

    loss_averages: LossAverages
    nan_stop: NonFiniteLossStop
    validation: Validation
    record: RunRecord
    scheduler: ParamScheduler | None
    stopper: EarlyStopping | None
    metrics_log: MetricsLog | None
    trackers: list[Tracker]
    checkpoints: CheckpointHandlers
    progress: Progress
    signals: SignalCheckpoint
    to_save: dict[str, Any]


def build_trackers(parts: RunParts) -> list[Tracker]:
    """The trackers ``--tracker`` names, each from the registry, each on every rank (only rank 0's log)."""
    names = [name for name in parts.config.tracker if name != NO_TRACKER]
    return [TRACKERS.load(name).for_run(parts.config, parts.run_dir) for name in names]


def _objects_to_save(parts: RunParts, **handlers: Any) -> dict[str, Any]:
    """Everything an exact resume restores, by checkpoint entry name (None values left out)."""
    to_save = {
        "model": parts.model, "optimizer": parts.optimizer, "trainer": parts.trainer, "rng": RankRNGStates(),
        "train_loader": parts.train_loader, "config": ConfigState(parts.config.to_dict()), "grad_scaler": parts.scaler,
        "dataset": ConfigState(DatasetInfo.of(parts.spec).to_dict()),
    } | handlers
    return {name: obj for name, obj in to_save.items() if obj is not None}


#: ``run(config, attach=...)``: attach your own handlers; return more objects to checkpoint (or None).
AttachHook = Callable[[RunParts], Mapping[str, Any] | None]


def attach_run_handlers(parts: RunParts, attach: AttachHook | None = None) -> RunHandlers:
    """Attach what ``parts.config`` asks for to ``parts.trainer`` and ``parts.evaluator``.

    ``attach(parts)`` is called after the trackers and before checkpointing, so at
    an epoch's end your handlers run after validation and before the checkpoint;
    the objects it returns (by name, each with ``state_dict``/``load_state_dict``)
    are saved in every checkpoint and restored on resume.
    """
    config, trainer, evaluator, rank = parts.config, parts.trainer, parts.evaluator, parts.rank
    averages = attach_loss_averages(trainer, device=parts.device)
    scheduler = attach_lr_schedule(trainer, parts.optimizer, config.lr_schedule, lr=config.lr,
                                   total_iterations=config.epochs * len(parts.train_loader))
    nan_stop = attach_nan_stop(trainer)
    validation = attach_validation(trainer, evaluator, parts.val_loader, every=config.val_every,
                                   every_iterations=config.val_every_iterations)
    record = attach_run_record(trainer, validation)
    stopper = None
    if config.patience is not None:
        stopper = attach_early_stopping(trainer, validation, patience=config.patience, monitor=config.monitor,
                                        min_delta=config.min_delta, every=config.val_every)
    metrics_log = None
    if rank == 0:  # files, progress and trackers come from rank 0 only
        metrics_log = attach_metrics_log(trainer, parts.run_dir.metrics_file, validation, parts.optimizer)
    trackers = build_trackers(parts)
    for tracker in trackers:
        tracker.attach(trainer, evaluators={"val": evaluator}, optimizer=parts.optimizer, model=parts.model,
                       record=record)
    to_save = _objects_to_save(
        parts, record=record, loss_averages=averages, metrics_log=metrics_log, lr_scheduler=scheduler,
        early_stopping=stopper, **{tracker.name: tracker for tracker in trackers},
    ) | dict((attach(parts) if attach is not None else None) or {})
    checkpoints = attach_checkpointing(
        trainer, to_save, parts.run_dir.checkpoint_dir, evaluator=evaluator,
        score_name=config.monitor.removeprefix(VALIDATION_PREFIX),
        score_mode="min" if lower_is_better(config.monitor) else "max",
        keep_best=config.keep_best, every_iterations=config.checkpoint_every,
    )
    progress = attach_progress(trainer, {"validation": evaluator}, mode=config.progress if rank == 0 else "none",
                               interval=config.progress_interval, metric_names=["loss"])
    signals = attach_signal_checkpoint(trainer, checkpoints.save_now)
    return RunHandlers(averages, nan_stop, validation, record, scheduler, stopper, metrics_log, trackers,
                       checkpoints, progress, signals, to_save)
