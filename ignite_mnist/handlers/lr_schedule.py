"""Attach a learning-rate schedule (``--lr-schedule``) to a trainer.

The schedules themselves (Ignite's parameter schedulers) are built by
:func:`ignite_mnist.optim.build_lr_schedule`; this only runs the scheduler before
every iteration.

Example:
    >>> from ignite.engine import Engine
    >>> model = torch.nn.Linear(2, 2)
    >>> optimizer = torch.optim.SGD(model.parameters(), lr=1.0)
    >>> trainer = Engine(lambda engine, batch: None)
    >>> scheduler = attach_lr_schedule(trainer, optimizer, "onecycle", lr=1.0, total_iterations=10)
    >>> _ = trainer.run(range(10), max_epochs=1)
    >>> round(optimizer.param_groups[0]["lr"], 4)
    0.001
"""

from __future__ import annotations

from typing import Any

import torch
from ignite.engine import Engine, Events
from ignite.handlers import ParamScheduler

from ignite_mnist.handlers.state import resumable_state
from ignite_mnist.optim import build_lr_schedule

__all__ = ["attach_lr_schedule"]


def attach_lr_schedule(
    trainer: Engine, optimizer: torch.optim.Optimizer, name: str, *, lr: float, total_iterations: int,
    event: Any = Events.ITERATION_STARTED,
) -> ParamScheduler | None:
    """Drive the learning rate of ``optimizer`` as ``name`` says; returns the scheduler (None for constant).

    Args:
        trainer: the training engine; the scheduler runs at ``event`` (before every iteration).
        optimizer: its ``param_groups[...]["lr"]`` is set.
        name: a name of :data:`ignite_mnist.registry.LR_SCHEDULES`.
        lr: the peak learning rate.
        total_iterations: iterations of the whole run (epochs x batches per epoch).

    The scheduler holds its position; it is saved in checkpoints (entry ``lr_scheduler``) by itself.
    ``trainer.remove_event_handler(scheduler, event)`` detaches it.
    """
    scheduler = build_lr_schedule(name, optimizer, lr=lr, total_iterations=total_iterations)
    if scheduler is not None:
        trainer.add_event_handler(event, scheduler)
        resumable_state(trainer).add("lr_scheduler", scheduler)
    return scheduler
