"""Every name a setting can take, each list in exactly one place, without importing torch.

A :class:`Registry` maps a name (``mlp``, ``adamw``, ``onecycle``) to the
``module:attribute`` that implements it, imported only when it is used. The
configuration's choices, the command line's ``--help``, the error messages and
the code that builds the thing all read the same registry, so a new model,
optimizer, schedule, dataset, export format or tracker is one line here plus its
implementation (see docs/design.md, "where each kind of change goes").
Plain choice lists that have no implementation to import (progress modes,
devices) live here too, for the same reason. Models may also be named by an
import path, ``package.module:Class``, for a network of your own.

Example:
    >>> MODELS.names
    ('mlp', 'mlp-deskew', 'cnn', 'fastcnn', 'quickcnn', 'deepcnn')
    >>> MODELS.load("mlp").__name__
    'TutorialMLP'
    >>> OPTIMIZERS.load("lion")
    Traceback (most recent call last):
    ...
    ValueError: unknown optimizer 'lion'; choose from adam, adamw, sgd
"""

from __future__ import annotations

import importlib
import os
import re
import sys
from collections.abc import Iterator, Mapping
from typing import Any

from ignite_mnist.errors import first_line, wants_traceback

__all__ = [
    "AUTO_PRUNER",
    "BACKENDS",
    "COMPARE_FORMATS",
    "DATASETS",
    "DEVICES",
    "EXPORT_FORMATS",
    "LOADERS",
    "LR_SCHEDULES",
    "MODELS",
    "MONITORS",
    "MONITOR_MODES",
    "NO_TRACKER",
    "OPTIMIZERS",
    "PROGRESS_MODES",
    "PRUNERS",
    "PRUNER_CHOICES",
    "QUANTIZATIONS",
    "SWEEP_DISTRIBUTIONS",
    "SWEEP_METHODS",
    "SWEEP_METRICS",
    "THREADS_AUTO",
    "THREAD_MODES",
    "TRACKERS",
    "TRACKER_CHOICES",
    "TRACKER_SETTINGS",
    "WANDB_ENV_MODES",
    "WANDB_MODES",
    "WANDB_WATCH",
    "Registry",
    "import_path",
    "is_import_path",
]


_IMPORT_PATH = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$")


def is_import_path(name: str) -> bool:
    """Whether ``name`` has the form ``package.module:attribute`` (what LightningCLI calls a class path).

    Example:
        >>> is_import_path("my_nets:Net"), is_import_path("mlp"), is_import_path("folder:/data/digits")
        (True, False, False)
    """
    return bool(_IMPORT_PATH.match(name))


def import_path(path: str) -> Any:
    """Import ``package.module:attribute``; the current folder is searched too, as ``python -m`` would.

    Raises:
        ValueError: the module cannot be imported or lacks the attribute; the message says which.
    """
    module_name, _, attribute = path.partition(":")
    if os.getcwd() not in sys.path:
        sys.path.append(os.getcwd())
    try:
        found: Any = importlib.import_module(module_name)
    except (Exception, SystemExit) as error:  # any failure inside the user's module (even sys.exit) is one line
        if wants_traceback():
            raise
        raise ValueError(f"cannot import {module_name} ({type(error).__name__}: {first_line(error)})") from None
    for part in attribute.split("."):
        if not hasattr(found, part):
            raise ValueError(f"{module_name} has no {attribute}")
        found = getattr(found, part)
    return found


class Registry(Mapping[str, str]):
    """Names of one kind of component, each with the ``module:attribute`` that implements it.

    Args:
        kind: what the names are, for messages (``"model"``).
        entries: ``{name: "package.module:attribute"}``, in the order ``--help`` lists them.
        import_paths: also accept any ``package.module:attribute`` as a name (your own component).
    """

    def __init__(self, kind: str, entries: Mapping[str, str], *, import_paths: bool = False) -> None:
        self.kind = kind
        self._entries = dict(entries)
        self.import_paths = import_paths

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

    def accepts(self, name: str) -> bool:
        """Whether ``name`` is registered, or an import path where those are accepted."""
        return name in self._entries or (self.import_paths and is_import_path(name))

    def load(self, name: str) -> Any:
        """Import and return what ``name`` stands for.

        Raises:
            ValueError: ``name`` is not registered (the message lists the names that are), or
                its import path cannot be imported.
        """
        if not self.accepts(name):
            also = " or a package.module:Class path" if self.import_paths else ""
            raise ValueError(f"unknown {self.kind} {name!r}; choose from {', '.join(self._entries)}{also}")
        return import_path(self._entries.get(name, name))


MODELS = Registry("model", {
    "mlp": "ignite_mnist.models:TutorialMLP",
    "mlp-deskew": "ignite_mnist.models:DeskewMLP",
    "cnn": "ignite_mnist.models:ConvNet",
    "fastcnn": "ignite_mnist.models:FastCNN",
    "quickcnn": "ignite_mnist.models:QuickCNN",
    "deepcnn": "ignite_mnist.models:DeepCNN",
}, import_paths=True)
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
    "mnist": "ignite_mnist.data.datasets:MNIST",
    "fashion-mnist": "ignite_mnist.data.datasets:FASHION_MNIST",
})
LOADERS = Registry("loader", {
    "tensor": "ignite_mnist.data.builders:tensor_loaders",
    "torch": "ignite_mnist.data.builders:torch_loaders",
})
EXPORT_FORMATS = Registry("export format", {
    "torchscript": "ignite_mnist.inference.export:TORCHSCRIPT",
    "onnx": "ignite_mnist.inference.export:ONNX",
    "executorch": "ignite_mnist.inference.executorch:EXECUTORCH",
})
#: What ``export --quantize`` takes (post-training static quantization); the formats that can take it say so.
QUANTIZATIONS = ("int8",)
TRACKERS = Registry("tracker", {
    "wandb": "ignite_mnist.tracking.wandb:WandbTracker",
    "tensorboard": "ignite_mnist.tracking.tensorboard:TensorboardTracker",
    "mlflow": "ignite_mnist.tracking.mlflow:MlflowTracker",
})
#: Each tracker's own settings and run-directory files (a ``TrackerSettings`` dataclass, no torch), by tracker name.
TRACKER_SETTINGS = Registry("tracker settings", {
    "wandb": "ignite_mnist.tracking.wandb_settings:WandbSettings",
    "tensorboard": "ignite_mnist.tracking.tensorboard_settings:TensorboardSettings",
    "mlflow": "ignite_mnist.tracking.mlflow_settings:MlflowSettings",
})
#: What ``--tracker`` takes: a tracker's name, or ``none`` (no tracker at all).
NO_TRACKER = "none"
TRACKER_CHOICES = (*TRACKERS.names, NO_TRACKER)
#: A sweep file's ``method`` (W&B's names) -> the builder of the Optuna sampler that runs it locally.
SWEEP_METHODS = Registry("sweep method", {
    "grid": "ignite_mnist.experiments.sweep:grid_sampler",
    "random": "ignite_mnist.experiments.sweep:random_sampler",
    "bayes": "ignite_mnist.experiments.sweep:tpe_sampler",
})
#: A sweep parameter's ``distribution`` (W&B's names) -> the builder of its Optuna distribution.
SWEEP_DISTRIBUTIONS = Registry("sweep distribution", {
    "constant": "ignite_mnist.experiments.sweep:categorical",
    "categorical": "ignite_mnist.experiments.sweep:categorical",
    "int_uniform": "ignite_mnist.experiments.sweep:int_uniform",
    "uniform": "ignite_mnist.experiments.sweep:uniform",
    "log_uniform_values": "ignite_mnist.experiments.sweep:log_uniform_values",
    "q_uniform": "ignite_mnist.experiments.sweep:q_uniform",
    "q_log_uniform_values": "ignite_mnist.experiments.sweep:q_log_uniform_values",
})
#: ``ignite-mnist sweep --pruner`` -> the builder of the Optuna pruner.
PRUNERS = Registry("pruner", {
    "halving": "ignite_mnist.experiments.sweep:halving_pruner",
    "median": "ignite_mnist.experiments.sweep:median_pruner",
    "none": "ignite_mnist.experiments.sweep:no_pruner",
})
#: ``--pruner auto``: ``halving`` when the sweep file has ``early_terminate``, else ``none``.
AUTO_PRUNER = "auto"
PRUNER_CHOICES = (AUTO_PRUNER, *PRUNERS.names)

PROGRESS_MODES = ("auto", "bar", "log", "none")
#: ``--threads auto``: time a few steps, then choose (see :mod:`ignite_mnist.runtime.threads`); else a count.
THREADS_AUTO = "auto"
THREAD_MODES = (THREADS_AUTO,)
#: ``compare --format``: aligned text, a Markdown table, or CSV (one row per run, no grouping).
COMPARE_FORMATS = ("text", "markdown", "csv")
DEVICES = ("auto", "cpu", "cuda")
BACKENDS = ("auto", "gloo", "nccl")
#: What the managed run can monitor (``--monitor``): the validation metrics of its evaluator, and which of
#: their values is best (``val_accuracy``: the largest; ``val_loss``: the smallest).
MONITOR_MODES = {"val_accuracy": "max", "val_loss": "min"}
MONITORS = tuple(MONITOR_MODES)


#: A sweep's ``metric.name``: what the W&B tracker logs for each monitor, the latest value
#: (``val/accuracy``, history) or the best one (``best_val_accuracy``, summary).
SWEEP_METRICS = tuple(m.replace("_", "/", 1) for m in MONITORS) + tuple(f"best_{m}" for m in MONITORS)
WANDB_MODES = ("auto", "online", "offline", "disabled")
#: The values W&B itself accepts in ``$WANDB_MODE``, and the mode each one means.
WANDB_ENV_MODES = {"online": "online", "run": "online", "offline": "offline", "dryrun": "offline",
                   "disabled": "disabled"}
WANDB_WATCH = ("off", "gradients", "parameters", "all")
