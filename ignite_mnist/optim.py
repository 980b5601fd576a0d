"""Optimizers (``--optimizer``) and learning-rate schedules (``--lr-schedule``), by the registry's names.

Optimizers are torch's, with its fused kernels where every parameter allows them
(a whole Adam step in one call: about 2x faster steps for the tutorial MLP on
CPU). Schedules are Ignite's parameter schedulers; each has
``state_dict``/``load_state_dict`` (its position), so it goes into the checkpoint
and a resumed run continues the same curve. The names are listed once, in
:mod:`ignite_mnist.registry`; :func:`attach_lr_schedule
<ignite_mnist.handlers.lr_schedule.attach_lr_schedule>` attaches a schedule to a trainer.

``onecycle``: Ignite's ``PiecewiseLinear`` from ``lr / 10`` up to ``lr`` over the
first 20 % of the iterations, then linearly down to ``lr / 1000`` at the last one.

Example:
    >>> model = torch.nn.Linear(2, 2)
    >>> optimizer = build_optimizer("sgd", model.parameters(), lr=0.1, momentum=0.9)
    >>> type(optimizer).__name__, optimizer.param_groups[0]["momentum"]
    ('SGD', 0.9)
    >>> build_lr_schedule("constant", optimizer, lr=0.1, total_iterations=100) is None
    True
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from ignite.handlers import ParamScheduler, PiecewiseLinear

from ignite_mnist.registry import LR_SCHEDULES, OPTIMIZERS

__all__ = [
    "WARMUP_FRACTION",
    "adam",
    "adamw",
    "build_lr_schedule",
    "build_optimizer",
    "constant_lr",
    "one_cycle_lr",
    "sgd",
]

#: Fraction of the run the one-cycle schedule spends warming up to the peak.
WARMUP_FRACTION = 0.2


def _fused(parameters: list[torch.Tensor]) -> bool | None:
    # torch's fused kernels exist for floating-point parameters on CPU and CUDA
    return all(p.device.type in ("cpu", "cuda") and p.is_floating_point() for p in parameters) or None


def adam(parameters: list[torch.Tensor], *, lr: float, momentum: float, weight_decay: float) -> torch.optim.Adam:
    """``--optimizer adam``: Adam with L2 weight decay (``momentum`` is not used)."""
    return torch.optim.Adam(parameters, lr=lr, weight_decay=weight_decay, fused=_fused(parameters))


def adamw(parameters: list[torch.Tensor], *, lr: float, momentum: float, weight_decay: float) -> torch.optim.AdamW:
    """``--optimizer adamw``: Adam with decoupled weight decay (``momentum`` is not used)."""
    return torch.optim.AdamW(parameters, lr=lr, weight_decay=weight_decay, fused=_fused(parameters))


def sgd(parameters: list[torch.Tensor], *, lr: float, momentum: float, weight_decay: float) -> torch.optim.SGD:
    """``--optimizer sgd``: SGD with ``momentum`` and L2 weight decay."""
    return torch.optim.SGD(parameters, lr=lr, momentum=momentum, weight_decay=weight_decay, fused=_fused(parameters))


def build_optimizer(
    name: str, parameters: Iterable[torch.Tensor], *, lr: float, momentum: float = 0.0, weight_decay: float = 0.0
) -> torch.optim.Optimizer:
    """The optimizer ``--optimizer`` names (see :data:`ignite_mnist.registry.OPTIMIZERS`)."""
    optimizer: torch.optim.Optimizer = OPTIMIZERS.load(name)(list(parameters), lr=lr, momentum=momentum,
                                                             weight_decay=weight_decay)
    return optimizer


def constant_lr(optimizer: torch.optim.Optimizer, *, lr: float, total_iterations: int) -> None:
    """``--lr-schedule constant``: nothing to schedule."""
    return


def one_cycle_lr(optimizer: torch.optim.Optimizer, *, lr: float, total_iterations: int) -> PiecewiseLinear:
    """``--lr-schedule onecycle``: warm up from ``lr/10`` to ``lr``, then down to ``lr/1000`` at the last iteration."""
    if total_iterations < 2:
        raise ValueError(f"onecycle needs at least 2 iterations, got {total_iterations}")
    peak = max(1, int(total_iterations * WARMUP_FRACTION))
    return PiecewiseLinear(
        optimizer, "lr", milestones_values=[(0, lr / 10), (peak, lr), (total_iterations - 1, lr / 1000)]
    )


def build_lr_schedule(
    name: str, optimizer: torch.optim.Optimizer, *, lr: float, total_iterations: int
) -> ParamScheduler | None:
    """The scheduler ``--lr-schedule`` names, to call before every iteration; None for ``constant``."""
    scheduler: ParamScheduler | None = LR_SCHEDULES.load(name)(optimizer, lr=lr, total_iterations=total_iterations)
    return scheduler
