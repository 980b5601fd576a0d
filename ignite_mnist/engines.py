"""The trainer and evaluator engines, on Ignite's ``Engine`` and metrics.

The trainer's update function is our own rather than Ignite's
``supervised_training_step`` because the hot path must not sync with the device:
it returns the loss as a detached tensor (read back only when something logs
it), switches the model to train mode only when an evaluation left it in eval
mode, and zeroes gradients with ``set_to_none=True``. The evaluator is Ignite's
``create_supervised_evaluator`` with Ignite's ``Accuracy`` and ``Loss``.

Example:
    >>> model = torch.nn.Linear(4, 3)
    >>> optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    >>> trainer = create_trainer(model, optimizer)
    >>> batch = (torch.randn(8, 4), torch.randint(0, 3, (8,)))
    >>> state = trainer.run([batch], max_epochs=2)
    >>> round(state.metrics["train_loss"], 2) > 0
    True
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from ignite.engine import Engine, create_supervised_evaluator
from ignite.metrics import Accuracy, Average, ConfusionMatrix, Loss, RunningAverage
from torch import nn

__all__ = ["create_evaluator", "create_trainer", "make_train_step", "build_optimizer"]


def build_optimizer(
    name: str, parameters: Any, *, lr: float, momentum: float = 0.0, weight_decay: float = 0.0
) -> torch.optim.Optimizer:
    """The optimizer named by ``--optimizer``: ``adam``, ``adamw`` or ``sgd``.

    Example:
        >>> build_optimizer("sgd", torch.nn.Linear(2, 2).parameters(), lr=0.1, momentum=0.9)
        ... # doctest: +ELLIPSIS
        SGD (...
    """
    if name == "adam":
        return torch.optim.Adam(parameters, lr=lr, weight_decay=weight_decay)
    if name == "adamw":
        return torch.optim.AdamW(parameters, lr=lr, weight_decay=weight_decay)
    if name == "sgd":
        return torch.optim.SGD(parameters, lr=lr, momentum=momentum, weight_decay=weight_decay)
    raise ValueError(f"unknown optimizer {name!r}; choose from adam, adamw, sgd")


def make_train_step(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] = nn.functional.cross_entropy,
    device: torch.device | str | None = None,
) -> Callable[[Engine, Any], torch.Tensor]:
    """One optimisation step as an Ignite update function; returns the detached loss."""
    device = torch.device(device) if device is not None else None

    def train_step(engine: Engine, batch: Any) -> torch.Tensor:
        images, labels = batch
        if device is not None and images.device != device:
            images = images.to(device, non_blocking=True)
            labels = labels.to(device, non_blocking=True)
        if not model.training:
            model.train()
        optimizer.zero_grad(set_to_none=True)
        loss = loss_fn(model(images), labels)
        loss.backward()
        optimizer.step()
        return loss.detach()

    return train_step


def create_trainer(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] = nn.functional.cross_entropy,
    device: torch.device | str | None = None,
) -> Engine:
    """An Ignite trainer with two metrics on its state.

    ``state.metrics["loss"]`` is a running average of the batch loss (for progress
    displays) and ``state.metrics["train_loss"]`` the mean loss of the last epoch.
    """
    trainer = Engine(make_train_step(model, optimizer, loss_fn, device))
    metric_device = device if device is not None else "cpu"
    RunningAverage(output_transform=lambda loss: loss, device=metric_device).attach(trainer, "loss")
    Average(output_transform=lambda loss: loss, device=metric_device).attach(trainer, "train_loss")
    return trainer


def create_evaluator(
    model: nn.Module,
    device: torch.device | str | None = None,
    *,
    num_classes: int = 10,
    confusion_matrix: bool = False,
) -> Engine:
    """Ignite's supervised evaluator with ``accuracy`` and ``loss`` (and ``confusion_matrix``).

    Example:
        >>> evaluator = create_evaluator(torch.nn.Linear(4, 3), num_classes=3)
        >>> state = evaluator.run([(torch.randn(8, 4), torch.randint(0, 3, (8,)))])
        >>> sorted(state.metrics)
        ['accuracy', 'loss']
    """
    metric_device = device if device is not None else "cpu"
    metrics: dict[str, Any] = {
        "accuracy": Accuracy(device=metric_device),
        "loss": Loss(nn.functional.cross_entropy, device=metric_device),
    }
    if confusion_matrix:
        metrics["confusion_matrix"] = ConfusionMatrix(num_classes, device=metric_device)
    return create_supervised_evaluator(model, metrics=metrics, device=device, non_blocking=True)


