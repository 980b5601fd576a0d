"""Handlers to attach to any Ignite ``Engine``: ours and Ignite's, with good defaults.

Every ``attach_*`` function takes the engines and objects it needs, attaches,
and returns the object it attached, so a custom trainer can put it into a
checkpoint, ask it something, or detach it. The managed run
(:mod:`ignite_mnist.training`) is built from exactly these.

Example:
    >>> from ignite_mnist.handlers import attach_validation, attach_checkpointing, attach_progress
"""

from ignite_mnist.events import ValidationEvents, on_exception
from ignite_mnist.handlers.checkpoint import CheckpointHandlers, attach_checkpointing
from ignite_mnist.handlers.early_stopping import attach_early_stopping, stopped_early
from ignite_mnist.handlers.loss_averages import LossAverages, attach_loss_averages
from ignite_mnist.handlers.lr_schedule import attach_lr_schedule
from ignite_mnist.handlers.metrics_log import MetricsLog, attach_metrics_log
from ignite_mnist.handlers.nan_stop import NonFiniteLossStop, attach_nan_stop
from ignite_mnist.handlers.progress import Progress, attach_progress
from ignite_mnist.handlers.pruning import TrialPruning, attach_trial_pruning
from ignite_mnist.handlers.record import RunRecord, attach_run_record
from ignite_mnist.handlers.signals import SignalCheckpoint, attach_signal_checkpoint
from ignite_mnist.handlers.validation import Validation, attach_validation
from ignite_mnist.handlers.wandb import attach_wandb

__all__ = [
    "CheckpointHandlers",
    "LossAverages",
    "MetricsLog",
    "NonFiniteLossStop",
    "Progress",
    "RunRecord",
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
    "attach_trial_pruning",
    "attach_validation",
    "attach_wandb",
    "on_exception",
    "stopped_early",
]
