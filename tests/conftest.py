"""Shared fixtures: small generated IDX datasets, real MNIST when available, W&B temp dirs, no MLflow server."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]


def write_idx_images(path: Path, images: torch.Tensor) -> None:
    """Write ``uint8 (N, 28, 28)`` images as an IDX file (magic 0x00000803)."""
    header = (0x00000803).to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in images.shape)
    path.write_bytes(header + images.to(torch.uint8).numpy().tobytes())


def write_idx_labels(path: Path, labels: torch.Tensor) -> None:
    """Write labels as an IDX file (magic 0x00000801)."""
    header = (0x00000801).to_bytes(4, "big") + len(labels).to_bytes(4, "big")
    path.write_bytes(header + labels.to(torch.uint8).numpy().tobytes())


def synthetic_digits(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Learnable fake digits: each class lights up its own band of rows, plus noise."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, 10, (n,), generator=g)
    images = torch.randint(0, 60, (n, 28, 28), generator=g)
    for c in range(10):
        rows = slice(2 + 2 * c, 4 + 2 * c)
        images[labels == c, rows, 4:24] += 180
    return images.clamp(0, 255).to(torch.uint8), labels


def make_idx_dataset(root: Path, n_train: int = 1200, n_test: int = 300, folder: str = "MNIST") -> Path:
    """A tiny dataset in torchvision's layout ``<root>/<folder>/raw/``; returns ``root``."""
    raw = root / folder / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    for prefix, n, seed in (("train", n_train, 1), ("t10k", n_test, 2)):
        images, labels = synthetic_digits(n, seed)
        write_idx_images(raw / f"{prefix}-images-idx3-ubyte", images)
        write_idx_labels(raw / f"{prefix}-labels-idx1-ubyte", labels)
    return root


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The tests on the real MNIST (marked ``integration``, or using ``mnist_root``) are in the slow tier too:
    ``pytest -m "not slow"`` leaves them out."""
    for item in items:
        if item.get_closest_marker("integration") is not None or "mnist_root" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.slow)


@pytest.fixture(scope="session")
def idx_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A generated MNIST-layout dataset (1200 train, 300 test images), shared read-only."""
    return make_idx_dataset(tmp_path_factory.mktemp("idx"))


@pytest.fixture
def fresh_idx_root(tmp_path: Path) -> Path:
    """A generated dataset a test may damage."""
    return make_idx_dataset(tmp_path / "data")


@pytest.fixture(scope="session")
def mnist_root() -> Path:
    """The real MNIST root from ``$IGNITE_MNIST_DATA_DIR``; skips when it is not set up."""
    root = os.environ.get("IGNITE_MNIST_DATA_DIR")
    if not root or not (Path(root) / "MNIST" / "raw" / "train-images-idx3-ubyte").is_file():
        pytest.skip("real MNIST not available: set IGNITE_MNIST_DATA_DIR to a folder holding MNIST/raw/")
    return Path(root)


@pytest.fixture(autouse=True)
def isolated_wandb(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test keeps W&B files in its own temp dir and never reaches a server."""
    wandb_home = tmp_path / "wandb-home"
    for name in ("WANDB_DIR", "WANDB_CACHE_DIR", "WANDB_CONFIG_DIR", "WANDB_DATA_DIR", "WANDB_ARTIFACT_DIR"):
        path = wandb_home / name.lower()
        path.mkdir(parents=True, exist_ok=True)
        monkeypatch.setenv(name, str(path))
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    # W&B hands its service to child processes in $WANDB_SERVICE; each CLI subprocess gets its own instead
    monkeypatch.delenv("WANDB_SERVICE", raising=False)
    monkeypatch.setenv("WANDB_SILENT", "true")
    return wandb_home


@pytest.fixture(autouse=True)
def isolated_mlflow(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test logs to an MLflow server or experiment named in the environment."""
    for name in ("MLFLOW_TRACKING_URI", "MLFLOW_EXPERIMENT_NAME", "MLFLOW_EXPERIMENT_ID", "MLFLOW_RUN_ID"):
        monkeypatch.delenv(name, raising=False)


def assert_same_weights(expected: dict[str, torch.Tensor], got: dict[str, torch.Tensor]) -> None:
    """Two state dicts with the same keys and bit-identical tensors (the failing key is named)."""
    assert got.keys() == expected.keys()
    for name, tensor in expected.items():
        assert torch.equal(got[name], tensor), name


def run_cli(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None,
            timeout: float = 600) -> subprocess.CompletedProcess[str]:
    """Run ``python -m ignite_mnist ARGS`` in a subprocess and capture its output."""
    full_env = dict(os.environ)
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "ignite_mnist", *args], cwd=cwd, env=full_env, capture_output=True, text=True,
        timeout=timeout,
    )


@pytest.fixture
def tmpfs(tmp_path: Path) -> Iterator[Callable[[str, str], Path]]:
    """Mount size-limited or read-only tmpfs folders; skips where mounting is not allowed (no CAP_SYS_ADMIN)."""
    mounted: list[Path] = []

    def mount(name: str, options: str) -> Path:
        target = tmp_path / name
        target.mkdir()
        result = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(target)], capture_output=True)
        if result.returncode != 0:
            pytest.skip(f"cannot mount tmpfs here: {result.stderr.decode().strip()}")
        mounted.append(target)
        return target

    yield mount
    for target in mounted:
        subprocess.run(["umount", "-l", str(target)], check=False)
