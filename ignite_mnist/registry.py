"""Every name a setting can take, each list in exactly one place, without importing torch.

A :class:`Registry` maps a name (``mlp``, ``adamw``, ``onecycle``) to the
``module:attribute`` that implements it, imported only when it is used. The
configuration's choices, the command line's ``--help``, the error messages and
the code that builds the thing all read the same registry, so a new model,
optimizer, schedule, dataset, export format or tracker is one line here plus its
implementation (see docs/design.md, "where each kind of change goes").
Plain choice lists that have no implementation to import (progress modes,
devices) live here too, for the same reason.

Example:
    >>> MODELS.names
    ('mlp', 'cnn', 'fastcnn')
    >>> MODELS.load("mlp").__name__
    'TutorialMLP'
    >>> OPTIMIZERS.load("lion")
    Traceback (most recent call last):
    ...
    ValueError: unknown optimizer 'lion'; choose from adam, adamw, sgd
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Mapping
from typing import Any

__all__ = [
    "BACKENDS",
    "DATASETS",
    "DEVICES",
    "EXPORT_FORMATS",
    "LOADERS",
    "LR_SCHEDULES",
    "MODELS",
    "MONITORS",
    "OPTIMIZERS",
    "PROGRESS_MODES",
    "Registry",
    "TRACKERS",
    "WANDB_MODES",
    "WANDB_WATCH",
]


class Registry(Mapping[str, str]):
    """Names of one kind of component, each with the ``module:attribute`` that implements it.

    Args:
        kind: what the names are, for messages (``"model"``).
        entries: ``{name: "package.module:attribute"}``, in the order ``--help`` lists them.
    """

    def __init__(self, kind: str, entries: Mapping[str, str]) -> None:
        self.kind = kind
        self._entries = dict(entries)

    def __getitem__(self, name: str) -> str:
        return self._entries[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def names(self) -> tuple[str, ...]:
        """The registered names, in order."""
        return tuple(self._entries)

    def load(self, name: str) -> Any:
        """Import and return what ``name`` stands for.

        Raises:
            ValueError: ``name`` is not registered; the message lists the names that are.
        """
        if name not in self._entries:
            raise ValueError(f"unknown {self.kind} {name!r}; choose from {', '.join(self._entries)}")
        module, _, attribute = self._entries[name].partition(":")
        return getattr(importlib.import_module(module), attribute)


MODELS = Registry("model", {
    "mlp": "ignite_mnist.models:TutorialMLP",
    "cnn": "ignite_mnist.models:ConvNet",
    "fastcnn": "ignite_mnist.models:FastCNN",
})
OPTIMIZERS = Registry("optimizer", {
    "adam": "ignite_mnist.optim:adam",
    "adamw": "ignite_mnist.optim:adamw",
    "sgd": "ignite_mnist.optim:sgd",
})
LR_SCHEDULES = Registry("learning-rate schedule", {
    "constant": "ignite_mnist.optim:constant_lr",
    "onecycle": "ignite_mnist.optim:one_cycle_lr",
})
DATASETS = Registry("dataset", {
    "mnist": "ignite_mnist.data:MNIST",
    "fashion-mnist": "ignite_mnist.data:FASHION_MNIST",
})
LOADERS = Registry("loader", {
    "tensor": "ignite_mnist.data:tensor_loaders",
    "torch": "ignite_mnist.data:torch_loaders",
})
EXPORT_FORMATS = Registry("export format", {
    "torchscript": "ignite_mnist.export:TORCHSCRIPT",
    "onnx": "ignite_mnist.export:ONNX",
})
TRACKERS = Registry("tracker", {
    "wandb": "ignite_mnist.tracking.wandb:WandbTracker",
})

PROGRESS_MODES = ("auto", "bar", "log", "none")
DEVICES = ("auto", "cpu", "cuda")
BACKENDS = ("auto", "gloo", "nccl")
MONITORS = ("val_accuracy", "val_loss")
WANDB_MODES = ("auto", "online", "offline", "disabled")
WANDB_WATCH = ("off", "gradients", "parameters", "all")
