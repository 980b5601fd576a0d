"""Handlers to attach to any Ignite ``Engine``: ours and Ignite's, with good defaults.

Example:
    >>> from ignite_mnist.handlers import attach_validation, attach_checkpointing, attach_progress
"""

from ignite_mnist.handlers.checkpoint import (
    CheckpointHandlers,
    ConfigState,
    RNGStates,
    attach_checkpointing,
    find_latest_checkpoint,
    load_checkpoint,
    resume_from,
)
from ignite_mnist.handlers.early_stopping import attach_early_stopping, stopped_early
from ignite_mnist.handlers.metrics_log import attach_metrics_log, read_metrics_log
from ignite_mnist.handlers.progress import attach_progress
from ignite_mnist.handlers.signals import attach_signal_checkpoint
from ignite_mnist.handlers.validation import attach_validation
from ignite_mnist.handlers.wandb import WandbTracker, attach_wandb

__all__ = [
    "CheckpointHandlers",
    "ConfigState",
    "RNGStates",
    "WandbTracker",
    "attach_checkpointing",
    "attach_early_stopping",
    "attach_metrics_log",
    "attach_progress",
    "attach_signal_checkpoint",
    "attach_validation",
    "attach_wandb",
    "find_latest_checkpoint",
    "load_checkpoint",
    "read_metrics_log",
    "resume_from",
    "stopped_early",
]
