"""The trainer and evaluator engines, on Ignite's ``Engine`` and metrics.

The trainer's update function is our own rather than Ignite's
``supervised_training_step`` because the hot path must not sync with the device:
it returns the loss as a detached tensor (read back only when something logs
it), switches the model to train mode only when an evaluation left it in eval
mode, and zeroes gradients with ``set_to_none=True``. It can run the forward pass
under autocast (``--amp``) and feed a CNN channels-last batches (on CUDA). The
trainer's loss metrics come from :mod:`ignite_mnist.handlers.loss_averages`
(device-side, cheaper than Ignite's ``RunningAverage`` + ``Average``). The
evaluator is Ignite's ``create_supervised_evaluator`` with Ignite's ``Accuracy``
and ``Loss``. Optimizers use torch's fused implementations where they exist.

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

import contextlib
from collections.abc import Callable
from typing import Any

import ignite.distributed as idist
import torch
from ignite.engine import Engine, create_supervised_evaluator
from ignite.metrics import Accuracy, ConfusionMatrix, Loss
from torch import nn

from ignite_mnist.handlers.loss_averages import attach_loss_averages

__all__ = ["amp_dtype", "cpu_has_bfloat16", "create_evaluator", "create_trainer", "make_train_step", "build_optimizer"]

#: On a GPU the running loss is read back (a device sync) only every this many iterations.
CUDA_LOSS_REFRESH = 50


def cpu_has_bfloat16() -> bool:
    """Whether this CPU computes bfloat16 natively (AVX512-BF16 or AMX), as oneDNN reports it.

    Example:
        >>> isinstance(cpu_has_bfloat16(), bool)
        True
    """
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):  # a torch built without oneDNN
        return False


def amp_dtype(device: torch.device | str) -> torch.dtype | None:
    """The autocast dtype ``--amp`` uses on ``device``; ``None`` where autocast would only slow training.

    On CPU: bfloat16 where the CPU has bfloat16 instructions, else ``None`` (float32).
    Without them torch emulates bfloat16: on the AVX2-only benchmark machine a
    FastCNN step ran 3.5x slower under bfloat16 autocast (336 vs 1,200 samples/s).
    On GPUs: bfloat16 where supported, float16 (with a ``GradScaler``) on older ones.

    Example:
        >>> amp_dtype("cpu") in (torch.bfloat16, None)
        True
    """
    device = torch.device(device)
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if device.type == "cpu":
        return torch.bfloat16 if cpu_has_bfloat16() else None
    return torch.bfloat16


def build_optimizer(
    name: str, parameters: Any, *, lr: float, momentum: float = 0.0, weight_decay: float = 0.0
) -> torch.optim.Optimizer:
    """The optimizer named by ``--optimizer``: ``adam``, ``adamw`` or ``sgd``.

    Example:
        >>> build_optimizer("sgd", torch.nn.Linear(2, 2).parameters(), lr=0.1, momentum=0.9)
        ... # doctest: +ELLIPSIS
        SGD (...
    """
    parameters = list(parameters)
    # torch's fused kernels do a whole step in one call: about 2x faster Adam steps for the tutorial MLP on CPU
    fused = all(p.device.type in ("cpu", "cuda") and p.is_floating_point() for p in parameters) or None
    if name == "adam":
        return torch.optim.Adam(parameters, lr=lr, weight_decay=weight_decay, fused=fused)
    if name == "adamw":
        return torch.optim.AdamW(parameters, lr=lr, weight_decay=weight_decay, fused=fused)
    if name == "sgd":
        return torch.optim.SGD(parameters, lr=lr, momentum=momentum, weight_decay=weight_decay, fused=fused)
    raise ValueError(f"unknown optimizer {name!r}; choose from adam, adamw, sgd")


def make_train_step(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] = nn.functional.cross_entropy,
    device: torch.device | str | None = None,
    *,
    amp: bool = False,
    channels_last: bool = False,
) -> Callable[[Engine, Any], torch.Tensor]:
    """One optimisation step as an Ignite update function; returns the detached loss.

    With several processes (``ignite.distributed``) the loss returned is the mean
    over all ranks, so every handler on every rank (NaN stop, checkpoints, loss
    averages) sees the same value and acts at the same iteration.

    Args:
        amp: run forward pass and loss under ``torch.autocast`` with :func:`amp_dtype`
            (float16 on old GPUs adds a ``GradScaler``; nothing changes where it is ``None``).
        channels_last: hand the model channels-last batches (for a CNN whose
            weights were converted with ``model.to(memory_format=torch.channels_last)``).
    """
    device = torch.device(device) if device is not None else None
    device_type = device.type if device is not None else "cpu"
    dtype = amp_dtype(device_type) if amp else None
    scaler = torch.amp.GradScaler(device_type) if dtype == torch.float16 else None
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
            return idist.all_reduce(loss.detach()) / world_size
        return loss.detach()

    return train_step


def create_trainer(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] = nn.functional.cross_entropy,
    device: torch.device | str | None = None,
    *,
    amp: bool = False,
    channels_last: bool = False,
) -> Engine:
    """An Ignite trainer with two metrics on its state.

    ``state.metrics["loss"]`` is a running average of the batch loss (for progress
    displays; on CUDA refreshed every 50 iterations to spare device syncs) and
    ``state.metrics["train_loss"]`` the mean loss of the last epoch. ``amp`` and
    ``channels_last`` are passed to :func:`make_train_step`.
    """
    trainer = Engine(make_train_step(model, optimizer, loss_fn, device, amp=amp, channels_last=channels_last))
    on_cuda = device is not None and torch.device(device).type == "cuda"
    attach_loss_averages(trainer, refresh_every=CUDA_LOSS_REFRESH if on_cuda else 1)
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


