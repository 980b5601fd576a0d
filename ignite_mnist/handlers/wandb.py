"""Attach Weights & Biases tracking to any Ignite trainer (the tracker itself: :mod:`ignite_mnist.tracking.wandb`).

Example:
    >>> from ignite.engine import Engine
    >>> trainer = Engine(lambda engine, batch: 0.5)
    >>> tracker = attach_wandb(trainer, mode="disabled")
    >>> tracker.mode, tracker.handles, tracker.state_dict()
    ('disabled', [], {'run_id': None})
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from ignite.engine import Engine

from ignite_mnist.handlers.record import RunRecord
from ignite_mnist.tracking.wandb import WandbTracker, wandb_init_args

__all__ = ["attach_wandb"]


def attach_wandb(
    trainer: Engine,
    *,
    optimizer: torch.optim.Optimizer | None = None,
    evaluators: Mapping[str, Engine] | None = None,
    model: torch.nn.Module | None = None,
    record: RunRecord | None = None,
    config: Mapping[str, Any] | None = None,
    mode: str = "auto",
    project: str | None = None,
    entity: str | None = None,
    name: str | None = None,
    tags: str | Sequence[str] | None = None,
    dir: str | Path | None = None,
    log_every: int = 50,
    watch: str = "off",
    run_id: str | None = None,
    epoch_metrics: Sequence[str] = ("train_loss",),
) -> WandbTracker:
    """Track ``trainer`` (and its evaluators) in a W&B run that starts with the trainer.

    What is logged: see :meth:`WandbTracker.attach <ignite_mnist.tracking.wandb.WandbTracker.attach>`.
    The run's files go to ``<dir>/wandb/`` unless ``$WANDB_DIR`` is set; ``project``,
    ``entity``, ``name`` and ``tags`` (comma-separated or a list) default to their
    ``$WANDB_*`` variables, then to ``ignite-mnist`` and the name of ``dir``. Put the
    returned tracker into the checkpoint (``to_save["wandb"]``): a resume that
    restores it before the trainer starts continues the same W&B run (or pass ``run_id``).

    Returns:
        The :class:`~ignite_mnist.tracking.wandb.WandbTracker`. Call ``log_test_report``,
        ``log_model`` and ``finish()`` on it at the end; an exception out of
        ``trainer.run`` finishes it with status ``interrupted`` or ``failed``.
    """
    init_args = wandb_init_args(project=project, entity=entity, name=name, tags=tags, config=config, dir=dir)
    tracker = WandbTracker(mode=mode, init_args=init_args, log_every=log_every, watch=watch, run_id=run_id)
    tracker.attach(trainer, evaluators=evaluators, optimizer=optimizer, model=model, record=record,
                   epoch_metrics=epoch_metrics)
    return tracker
