"""Handlers to attach to any Ignite ``Engine``: ours and Ignite's, with good defaults.

Example:
    >>> from ignite_mnist.handlers import attach_validation, attach_progress
"""

from ignite_mnist.handlers.metrics_log import attach_metrics_log, read_metrics_log
from ignite_mnist.handlers.progress import attach_progress
from ignite_mnist.handlers.validation import attach_validation

__all__ = ["attach_metrics_log", "attach_progress", "attach_validation", "read_metrics_log"]
