"""A CNN and an MLP trained briefly on real MNIST, saved as checkpoints, shared by the inference tests."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from ignite.utils import manual_seed

from ignite_mnist.data import MNIST, TensorLoader, load_splits
from ignite_mnist.engines import create_trainer
from ignite_mnist.models import build_model
from ignite_mnist.optim import build_optimizer
from ignite_mnist.settings.config import TrainConfig

TRAIN_IMAGES = 15_000  # one epoch on these gives about 97.5 % test accuracy in a few seconds


def train_checkpoint(model_name: str, mnist_root: Path, folder: Path) -> Path:
    """One epoch of ``model_name`` on 15,000 real training images, as ``{"model", "config"}`` in a ``.pt``."""
    manual_seed(0)
    splits = load_splits(mnist_root, "mnist", val_size=5000, seed=0)
    spec = MNIST
    images, labels = splits.train[0][:TRAIN_IMAGES], splits.train[1][:TRAIN_IMAGES]
    model = build_model(model_name)
    trainer = create_trainer(model, build_optimizer("adam", model.parameters(), lr=2e-3))
    trainer.run(TensorLoader(images, labels, 64, mean=spec.mean, std=spec.std, shuffle=True), max_epochs=1)
    config = TrainConfig(model=model_name, data_dir=str(mnist_root), epochs=1, batch_size=64, lr=2e-3)
    path = folder / f"{model_name}.pt"
    torch.save({"model": model.state_dict(), "config": config.to_dict()}, path)
    return path


@pytest.fixture(scope="session")
def mnist_checkpoint(mnist_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The CNN trained for one epoch on 15,000 real training images (about 97.5 % test accuracy)."""
    return train_checkpoint("cnn", mnist_root, tmp_path_factory.mktemp("mnist-model"))


@pytest.fixture(scope="session")
def mnist_mlp_checkpoint(mnist_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tutorial MLP trained the same way."""
    return train_checkpoint("mlp", mnist_root, tmp_path_factory.mktemp("mnist-mlp"))


@pytest.fixture(scope="session")
def idx_run(idx_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished ``training.run`` (MLP, 2 epochs) on the generated dataset: checkpoints, summary, plots."""
    from ignite_mnist.training.managed import run

    output = tmp_path_factory.mktemp("runs")
    summary = run(TrainConfig(
        data_dir=str(idx_root), val_size=200, epochs=2, output_dir=str(output), run_name="idx-run",
        progress="none", tracker=["none"],
    ))
    return Path(summary.run_dir)
