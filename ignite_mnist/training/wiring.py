"""Phase 2 of a run: attach the handlers to the engines, from the same public ``attach_*`` a custom trainer uses.

Every handler comes from :mod:`ignite_mnist.handlers` and the trackers from
:mod:`ignite_mnist.tracking`; this module only decides which ones a config asks
for, at which events, and names the run's own objects for its checkpoints (model,
optimizer, the data loader, the settings). The handlers save themselves and
order themselves (:func:`~ignite_mnist.handlers.resumable_state`), so the order of
the calls below is only for reading.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ignite.engine import Events
from ignite.handlers import EarlyStopping

from ignite_mnist import handlers
from ignite_mnist.data import DatasetInfo
from ignite_mnist.events import EngineEvent
from ignite_mnist.handlers import (
    CheckpointHandlers,
    LossAverages,
    LrSchedule,
    MetricsLog,
    NonFiniteLossStop,
    Progress,
    ResumableState,
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
    every_epochs,
    resumable_state,
)
from ignite_mnist.registry import NO_TRACKER
from ignite_mnist.runtime.distributed import RankRNGStates, is_rank_zero
from ignite_mnist.settings.config import TrainConfig
from ignite_mnist.storage.checkpoints import ConfigState
from ignite_mnist.tracking import Tracker
from ignite_mnist.training.parts import RunParts

__all__ = ["AttachHook", "RunHandlers", "attach_run_handlers", "attach_trackers"]


@dataclass
class RunHandlers:
    """What phase 2 attached to a run's engines, and the trainer's resumable state its checkpoints save."""

    loss_averages: LossAverages
    nan_stop: NonFiniteLossStop
    validation: Validation
    record: RunRecord
    schedule: LrSchedule
    stopper: EarlyStopping | None
    metrics_log: MetricsLog | None
    trackers: list[Tracker]
    checkpoints: CheckpointHandlers
    progress: Progress
    signals: SignalCheckpoint
    state: ResumableState

    @property
    def to_save(self) -> dict[str, Any]:
        """What every checkpoint saves, by entry name (the checkpoint handlers' own bookkeeping aside)."""
        return dict(self.state.objects)

    @property
    def resumable(self) -> dict[str, Any]:
        """The checkpoint handlers' bookkeeping, restored when the run goes on in its own folder."""
        return dict(self.state.bookkeeping)


def attach_trackers(parts: RunParts) -> list[Tracker]:
    """The trackers ``--tracker`` names, through the public :func:`~ignite_mnist.handlers.attach_tracker`, each
    with its own settings (``--wandb-*``, ``--mlflow-*``) as its options; on every rank (only rank 0's log)."""
    config = parts.config
    return [
        handlers.attach_tracker(parts.trainer, name, parts.run_dir.path, evaluators={"val": parts.evaluator},
                                optimizer=parts.optimizer, model=parts.model, config=config.to_dict(),
                                log_every=config.log_every, **config.settings_of(name).options())
        for name in config.tracker if name != NO_TRACKER
    ]


def _own_objects(parts: RunParts) -> dict[str, Any]:
    """The run's own objects its checkpoints save beside the handlers' (None values left out)."""
    objects = {
        "model": parts.model, "optimizer": parts.optimizer, "rng": RankRNGStates(), "train_loader": parts.train_loader,
        "config": ConfigState(parts.config.to_dict()), "grad_scaler": parts.scaler,
        "dataset": ConfigState(DatasetInfo.of(parts.spec).to_dict()),
    }
    return {name: obj for name, obj in objects.items() if obj is not None}


def _events(config: TrainConfig) -> tuple[EngineEvent, EngineEvent]:
    """The validation and "last" checkpoint events ``--val-every(-iterations)``/``--checkpoint-every`` ask for."""
    validate: EngineEvent = every_epochs(config.val_every)
    if config.val_every_iterations is not None:
        validate = validate | Events.ITERATION_COMPLETED(every=config.val_every_iterations)
    save: EngineEvent = Events.EPOCH_COMPLETED
    if config.checkpoint_every is not None:
        save = save | Events.ITERATION_COMPLETED(every=config.checkpoint_every)
    return validate, save


#: ``run(config, attach=...)``: attach your own handlers; return more objects to checkpoint (or None).
AttachHook = Callable[[RunParts], Mapping[str, Any] | None]


def attach_run_handlers(parts: RunParts, attach: AttachHook | None = None) -> RunHandlers:
    """Attach what ``parts.config`` asks for to ``parts.trainer`` and ``parts.evaluator``.

    ``attach(parts)`` is called after the trackers; the objects it returns (by
    name, each with ``state_dict``/``load_state_dict``) are saved in every
    checkpoint and restored on resume.
    """
    config, trainer, rank_zero = parts.config, parts.trainer, is_rank_zero()
    validate, save = _events(config)
    averages = attach_loss_averages(trainer, device=parts.device)
    schedule = attach_lr_schedule(trainer, parts.optimizer, config.lr_schedule, lr=config.lr,
                                   total_iterations=config.epochs * len(parts.train_loader))
    nan_stop = attach_nan_stop(trainer)
    validation = attach_validation(trainer, parts.evaluator, parts.val_loader, event=validate)
    record = attach_run_record(trainer)
    stopper = None
    if config.patience is not None:
        stopper = attach_early_stopping(trainer, patience=config.patience, monitor=config.monitor,
                                        min_delta=config.min_delta)
    metrics_log = attach_metrics_log(trainer, parts.run_dir.metrics_file, parts.optimizer) if rank_zero else None
    trackers = attach_trackers(parts)  # files, progress and trackers come from rank 0 only
    own = _own_objects(parts) | dict((attach(parts) if attach is not None else None) or {})
    checkpoints = attach_checkpointing(trainer, parts.run_dir.checkpoint_dir, own, event=save, monitor=config.monitor,
                                       keep_best=config.keep_best)
    progress = attach_progress(trainer, {"validation": parts.evaluator}, mode=config.progress if rank_zero else "none",
                               interval=config.progress_interval, metric_names=["loss"])
    signals = attach_signal_checkpoint(trainer, checkpoints)
    state = resumable_state(trainer)
    state.all_named = True  # every stateful object of a managed run is named above: no scan for unsaved ones
    return RunHandlers(averages, nan_stop, validation, record, schedule, stopper, metrics_log, trackers,
                       checkpoints, progress, signals, state)
