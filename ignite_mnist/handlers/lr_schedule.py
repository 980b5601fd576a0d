"""Attach a learning-rate schedule (``--lr-schedule``) to a trainer.

The schedules themselves (Ignite's parameter schedulers) are built by
:func:`ignite_mnist.optim.build_lr_schedule`; this only runs the scheduler before
every iteration.

Example:
    >>> from ignite.engine import Engine
    >>> model = torch.nn.Linear(2, 2)
    >>> optimizer = torch.optim.SGD(model.parameters(), lr=1.0)
    >>> trainer = Engine(lambda engine, batch: None)
    >>> schedule = attach_lr_schedule(trainer, optimizer, "onecycle", lr=1.0, total_iterations=10)
    >>> _ = trainer.run(range(10), max_epochs=1)
    >>> round(optimizer.param_groups[0]["lr"], 4)
    0.001
"""

from __future__ import annotations

import torch
from ignite.engine import Engine, Events
from ignite.handlers import ParamScheduler

from ignite_mnist.events import EngineEvent, Handlers
from ignite_mnist.handlers.state import resumable_state
from ignite_mnist.optim import build_lr_schedule

__all__ = ["LrSchedule", "attach_lr_schedule"]


class LrSchedule:
    """What :func:`attach_lr_schedule` attached: Ignite's parameter scheduler (None for a constant rate).

    Attributes:
        scheduler: the ``ParamScheduler`` run at ``event`` (saved in checkpoints as ``lr_scheduler``), or None.
    """

    def __init__(self, trainer: Engine, scheduler: ParamScheduler | None, event: EngineEvent) -> None:
        self.trainer, self.scheduler, self.event = trainer, scheduler, event
        self.handlers = Handlers()
        if scheduler is not None:
            self.handlers.add(trainer, event, scheduler)
            resumable_state(trainer).add("lr_scheduler", scheduler)

    def detach(self) -> None:
        """Stop scheduling (the learning rate stays where it is) and saving the schedule."""
        self.handlers.remove()
        if self.scheduler is not None:
            resumable_state(self.trainer).remove(self.scheduler)


def attach_lr_schedule(
    trainer: Engine, optimizer: torch.optim.Optimizer, name: str, *, lr: float, total_iterations: int,
    event: EngineEvent = Events.ITERATION_STARTED,
) -> LrSchedule:
    """Drive the learning rate of ``optimizer`` as ``name`` says.

    Args:
        trainer: the training engine; the scheduler runs at ``event`` (before every iteration).
        optimizer: its ``param_groups[...]["lr"]`` is set.
        name: a name of :data:`ignite_mnist.registry.LR_SCHEDULES` (``constant`` schedules nothing).
        lr: the peak learning rate.
        total_iterations: iterations of the whole run (epochs x batches per epoch).

    Returns:
        The :class:`LrSchedule` (``.scheduler`` holds its position and is saved in checkpoints as
        ``lr_scheduler`` by itself; ``.detach()`` removes it).
    """
    return LrSchedule(trainer, build_lr_schedule(name, optimizer, lr=lr, total_iterations=total_iterations), event)
