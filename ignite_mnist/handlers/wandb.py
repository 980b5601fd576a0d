"""Attach Weights & Biases tracking to any Ignite trainer: :func:`attach_tracker` with ``"wandb"``.

The tracker itself is :mod:`ignite_mnist.tracking.wandb`.

Example:
    >>> import tempfile
    >>> from ignite.engine import Engine
    >>> trainer = Engine(lambda engine, batch: 0.5)
    >>> tracker = attach_wandb(trainer, tempfile.mkdtemp(), mode="disabled")
    >>> tracker.mode, tracker.handles, tracker.state_dict()
    ('disabled', [], {'run_id': None})
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ignite.engine import Engine

from ignite_mnist.handlers.tracker import attach_tracker
from ignite_mnist.tracking.wandb import WandbTracker

__all__ = ["attach_wandb"]


def attach_wandb(trainer: Engine, dir: str | Path, **options: Any) -> WandbTracker:
    """``attach_tracker(trainer, "wandb", dir, **options)``: a W&B run that starts with the trainer.

    Offline unless W&B credentials are found (``mode="auto"``; ``$WANDB_MODE`` wins);
    its files go to ``<dir>/wandb/`` unless ``$WANDB_DIR`` is set. A resume continues
    the same W&B run. See :func:`~ignite_mnist.handlers.attach_tracker` for ``options``.
    """
    return attach_tracker(trainer, "wandb", dir, **options)  # type: ignore[return-value]
