"""ignite-mnist: train handwritten-digit classifiers with PyTorch-Ignite.

The names below are imported on first use, so ``ignite-mnist --help`` and usage
errors answer without loading torch.

Example:
    >>> from ignite_mnist import TrainConfig, run
    >>> summary = run(TrainConfig(model="cnn", epochs=1, data_dir=data_dir, val_size=200, output_dir=runs,
    ...                           progress="none", tracker=["none"], plots=False))
    >>> summary.epochs_completed, summary.test_accuracy > 0.5
    (1, True)
"""

from __future__ import annotations

import importlib
from typing import Any

from ignite_mnist import _moved
from ignite_mnist._version import __version__
from ignite_mnist.settings.config import TrainConfig

_moved.install()

_LAZY = {
    "ConvNet": "ignite_mnist.models",
    "TutorialMLP": "ignite_mnist.models",
    "build_model": "ignite_mnist.models",
    "TensorLoader": "ignite_mnist.data",
    "load_splits": "ignite_mnist.data",
    "create_evaluator": "ignite_mnist.engines",
    "create_trainer": "ignite_mnist.engines",
    "Summary": "ignite_mnist.training.report",
    "run": "ignite_mnist.training.managed",
}

__all__ = ["TrainConfig", "__version__", *sorted(_LAZY)]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'ignite_mnist' has no attribute {name!r}")
