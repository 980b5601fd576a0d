"""ignite-mnist: train handwritten-digit classifiers with PyTorch-Ignite.

Example:
    >>> from ignite_mnist import TrainConfig, run
    >>> summary = run(TrainConfig(model="cnn", epochs=3))  # doctest: +SKIP
"""

from ignite_mnist.config import TrainConfig
from ignite_mnist.data import TensorLoader, load_splits
from ignite_mnist.engines import create_evaluator, create_trainer
from ignite_mnist.handlers import attach_metrics_log, attach_progress, attach_validation
from ignite_mnist.models import ConvNet, TutorialMLP, build_model
from ignite_mnist.training import Summary, run

__all__ = [
    "ConvNet",
    "Summary",
    "TensorLoader",
    "TrainConfig",
    "TutorialMLP",
    "attach_metrics_log",
    "attach_progress",
    "attach_validation",
    "build_model",
    "create_evaluator",
    "create_trainer",
    "load_splits",
    "run",
]
