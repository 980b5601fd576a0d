"""Everything a hand-written Ignite trainer needs from ignite-mnist, from one import place.

Every ``attach_*`` function takes the engines and objects it needs, attaches at
the event the caller picks (``event=``, Ignite's way, defaulting to what the
managed run does), and returns the object it attached, which has ``detach``.
Every stateful handler saves itself: checkpoints hold the trainer's
:func:`resumable_state` (the trainer, RNG states, the data's position, every
handler) plus the objects you name, and :func:`resume_training` restores it all.
The managed run (:mod:`ignite_mnist.training.managed`) is built from exactly these.

Example:
    >>> from ignite_mnist.handlers import attach_validation, attach_checkpointing, resume_training
"""

from ignite_mnist.errors import Interrupted
from ignite_mnist.events import ValidationEvents, on_exception
from ignite_mnist.handlers.checkpoint import CheckpointHandlers, attach_checkpointing
from ignite_mnist.handlers.early_stopping import EpochEarlyStopping, attach_early_stopping, stopped_early
from ignite_mnist.handlers.evaluate import evaluate_best
from ignite_mnist.handlers.loss_averages import LossAverages, attach_loss_averages
from ignite_mnist.handlers.lr_schedule import LrSchedule, attach_lr_schedule
from ignite_mnist.handlers.metrics_log import MetricsLog, attach_metrics_log
from ignite_mnist.handlers.nan_stop import NonFiniteLossStop, attach_nan_stop
from ignite_mnist.handlers.progress import Progress, attach_progress
from ignite_mnist.handlers.pruning import TrialPruning, attach_trial_pruning
from ignite_mnist.handlers.record import RunRecord, attach_run_record
from ignite_mnist.handlers.resume import Resumed, SavedCheckpoint, resume_training
from ignite_mnist.handlers.signals import SignalCheckpoint, attach_signal_checkpoint
from ignite_mnist.handlers.state import ResumableState, resumable_state
from ignite_mnist.handlers.threads import set_threads
from ignite_mnist.handlers.tracker import attach_tracker, detach_tracker
from ignite_mnist.handlers.validation import Validation, attach_validation, every_epochs, monitor_mode
from ignite_mnist.handlers.wandb import attach_wandb

__all__ = [
    "CheckpointHandlers",
    "EpochEarlyStopping",
    "Interrupted",
    "LossAverages",
    "LrSchedule",
    "MetricsLog",
    "NonFiniteLossStop",
    "Progress",
    "ResumableState",
    "Resumed",
    "RunRecord",
    "SavedCheckpoint",
    "SignalCheckpoint",
    "TrialPruning",
    "Validation",
    "ValidationEvents",
    "attach_checkpointing",
    "attach_early_stopping",
    "attach_loss_averages",
    "attach_lr_schedule",
    "attach_metrics_log",
    "attach_nan_stop",
    "attach_progress",
    "attach_run_record",
    "attach_signal_checkpoint",
    "attach_tracker",
    "attach_trial_pruning",
    "attach_validation",
    "attach_wandb",
    "detach_tracker",
    "evaluate_best",
    "every_epochs",
    "monitor_mode",
    "on_exception",
    "resumable_state",
    "resume_training",
    "set_threads",
    "stopped_early",
]
