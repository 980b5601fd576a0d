"""The trainer and evaluator engines, on Ignite's ``Engine`` and metrics.

The trainer's update function is our own rather than Ignite's
``supervised_training_step`` because the hot path must not sync with the device:
it returns the loss as a detached tensor (read back only when something logs
it), switches the model to train mode only when an evaluation left it in eval
mode, and zeroes gradients with ``set_to_none=True``. It can run the forward pass
under autocast (``--amp``) and feed a CNN channels-last batches. The
trainer's loss metrics come from :mod:`ignite_mnist.handlers.loss_averages`
(cheaper than Ignite's ``RunningAverage`` + ``Average``). The
evaluator is Ignite's ``create_supervised_evaluator`` with Ignite's ``Accuracy``
and ``Loss``. Optimizers use torch's fused implementations where they exist.

Example:
    >>> model = torch.nn.Linear(4, 3)
    >>> optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    >>> trainer = create_trainer(model, optimizer)
    >>> batch = (torch.randn(8, 4), torch.randint(0, 3, (8,)))
    >>> state = trainer.run([batch], max_epochs=2)
    >>> float(state.output) > 0
    True
"""

from __future__ import annotations

import contextlib
import functools
import weakref
from collections.abc import Callable
from typing import Any, cast

import ignite.distributed as idist
import torch
from ignite.engine import Engine, create_supervised_evaluator
from ignite.metrics import Accuracy, ConfusionMatrix, Loss, Metric
from torch import nn

from ignite_mnist.runtime.devices import amp_dtype

__all__ = [
    "create_evaluator", "create_trainer", "make_grad_scaler", "make_train_step", "metrics_of", "training_loss",
]

#: The metrics of each evaluator :func:`create_evaluator` built.
_METRICS: weakref.WeakKeyDictionary[Engine, dict[str, Metric]] = weakref.WeakKeyDictionary()

def make_grad_scaler(device: torch.device | str | None, amp: bool | torch.dtype) -> torch.amp.GradScaler | None:
    """The ``GradScaler`` float16 autocast needs (None for float32 and bfloat16); checkpoint it with the run.

    Example:
        >>> make_grad_scaler("cpu", False) is None
        True
    """
    device_type = torch.device(device).type if device is not None else "cpu"
    dtype = _autocast_dtype(device_type, amp)
    return torch.amp.GradScaler(device_type) if dtype == torch.float16 else None


def _autocast_dtype(device_type: str, amp: bool | torch.dtype) -> torch.dtype | None:
    if isinstance(amp, torch.dtype):
        return amp
    return amp_dtype(device_type) if amp else None


def training_loss(label_smoothing: float = 0.0) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """The training loss: cross-entropy of logits, with label smoothing when asked (``--label-smoothing``).

    Example:
        >>> loss = training_loss(0.1)(torch.tensor([[10.0, 0.0]]), torch.tensor([0]))
        >>> round(float(loss), 2)  # 0.1 of the target spread over both classes: 0.05 * 10 nats
        0.5
    """
    if label_smoothing:
        return functools.partial(nn.functional.cross_entropy, label_smoothing=label_smoothing)
    return nn.functional.cross_entropy


def make_train_step(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] = nn.functional.cross_entropy,
    device: torch.device | str | None = None,
    *,
    amp: bool | torch.dtype = False,
    channels_last: bool = False,
    scaler: torch.amp.GradScaler | None = None,
) -> Callable[[Engine, Any], torch.Tensor]:
    """One optimisation step as an Ignite update function; returns the detached loss.

    With several processes the loss returned is the mean over all ranks, so every
    handler on every rank sees the same value and acts at the same iteration.

    Args:
        amp: run forward pass and loss under ``torch.autocast``: ``True`` with
            :func:`~ignite_mnist.runtime.devices.amp_dtype` of the device (nothing changes where
            that is ``None``), or a given dtype.
        channels_last: hand the model channels-last batches (for a CNN whose
            weights were converted with ``model.to(memory_format=torch.channels_last)``).
        scaler: the ``GradScaler`` float16 needs (:func:`make_grad_scaler`); it is
            the caller's, so it can go into the checkpoint.

    Raises:
        ValueError: float16 autocast without a ``scaler``.
    """
    device = torch.device(device) if device is not None else None
    device_type = device.type if device is not None else "cpu"
    dtype = _autocast_dtype(device_type, amp)
    if dtype == torch.float16 and scaler is None:
        raise ValueError("float16 autocast needs a GradScaler: pass scaler=make_grad_scaler(device, amp)")
    world_size = idist.get_world_size()

    def train_step(engine: Engine, batch: Any) -> torch.Tensor:
        images, labels = batch
        if device is not None and images.device != device:
            images = images.to(device, non_blocking=True)
            labels = labels.to(device, non_blocking=True)
        if channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        if not model.training:
            model.train()
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast(device_type, dtype=dtype) if dtype is not None else contextlib.nullcontext():
            loss = loss_fn(model(images), labels)
        if scaler is not None:
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
        else:
            loss.backward()
            optimizer.step()
        if world_size > 1:
            return cast(torch.Tensor, idist.all_reduce(loss.detach())) / world_size
        return loss.detach()

    return train_step


def create_trainer(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] = nn.functional.cross_entropy,
    device: torch.device | str | None = None,
    *,
    amp: bool | torch.dtype = False,
    channels_last: bool = False,
    scaler: torch.amp.GradScaler | None = None,
) -> Engine:
    """An Ignite trainer running :func:`make_train_step`; its output is the detached batch loss.

    Attach :func:`~ignite_mnist.handlers.attach_loss_averages` for the ``loss`` and
    ``train_loss`` metrics. ``amp``, ``channels_last`` and ``scaler`` are passed to
    :func:`make_train_step`.
    """
    return Engine(make_train_step(model, optimizer, loss_fn, device, amp=amp, channels_last=channels_last,
                                  scaler=scaler))


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
    evaluator = create_supervised_evaluator(model, metrics=metrics, device=device, non_blocking=True)
    _METRICS[evaluator] = metrics
    return evaluator


def metrics_of(evaluator: Engine) -> dict[str, Metric]:
    """The metrics, by name, of an evaluator :func:`create_evaluator` built (none for any other engine).

    Example:
        >>> sorted(metrics_of(create_evaluator(torch.nn.Linear(4, 3), num_classes=3)))
        ['accuracy', 'loss']
    """
    return dict(_METRICS.get(evaluator, {}))


