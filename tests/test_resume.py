"""Exact resume after SIGKILL and SIGTERM, in real subprocesses training on real MNIST."""

import json
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from ignite_mnist.storage.checkpoints import find_latest_checkpoint
from tests.conftest import assert_same_weights

pytestmark = pytest.mark.integration

# 2 epochs of 430 iterations (55,000 images, batch 128), a checkpoint every 50 iterations.
SETTINGS = ("--epochs", "2", "--batch-size", "128", "--checkpoint-every", "50", "--progress", "log",
            "--progress-interval", "0.5", "--wandb-mode", "disabled")


def train_args(root: Path, output: Path, name: str, *extra: str) -> list[str]:
    return [sys.executable, "-m", "ignite_mnist", "--data-dir", str(root), "--output-dir", str(output),
            "--run-name", name, *SETTINGS, *extra]


def final_model(run_dir: Path) -> dict[str, torch.Tensor]:
    checkpoint = torch.load(find_latest_checkpoint(run_dir / "checkpoints"), weights_only=True)
    assert checkpoint["trainer"]["iteration"] == 860
    return checkpoint["model"]


def start_and_wait_for(args: list[str], checkpoint: Path, timeout: float = 300) -> subprocess.Popen:
    process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + timeout
    while not checkpoint.exists():
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "no checkpoint appeared"
        time.sleep(0.05)
    return process


@pytest.fixture(scope="module")
def reference(mnist_root, tmp_path_factory):
    output = tmp_path_factory.mktemp("reference")
    result = subprocess.run(train_args(mnist_root, output, "ref"), capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    return final_model(output / "ref"), json.loads((output / "ref" / "summary.json").read_text())


@pytest.mark.parametrize(("after", "seed"), [(50, 1), (400, 2), (700, 3)])
def test_sigkill_then_resume_auto_gives_the_same_weights(mnist_root, tmp_path, reference, after, seed):
    run_dir = tmp_path / "k"
    process = start_and_wait_for(train_args(mnist_root, tmp_path, "k"),
                                 run_dir / "checkpoints" / f"last_checkpoint_{after}.pt")
    time.sleep(random.Random(seed).uniform(0.0, 0.6))  # land somewhere between two checkpoints
    process.kill()
    process.communicate()
    assert process.returncode == -signal.SIGKILL

    resumed = subprocess.run(
        [sys.executable, "-m", "ignite_mnist", "--resume", "auto", "--output-dir", str(tmp_path), "--run-name", "k"],
        capture_output=True, text=True, timeout=600,
    )
    assert resumed.returncode == 0, resumed.stderr
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["resumed_from"] is not None
    assert_same_weights(final_model(run_dir), reference[0])
    assert summary["test_accuracy"] == reference[1]["test_accuracy"]
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [row["epoch"] for row in rows] == [1, 2]


def test_sigterm_saves_exits_143_and_resume_completes(mnist_root, tmp_path, reference):
    run_dir = tmp_path / "t"
    process = start_and_wait_for(train_args(mnist_root, tmp_path, "t"),
                                 run_dir / "checkpoints" / "last_checkpoint_100.pt")
    process.send_signal(signal.SIGTERM)
    stdout, stderr = process.communicate(timeout=120)
    assert process.returncode == 143
    assert stderr.count("\n") == 1 and "Traceback" not in stderr
    assert "interrupted by SIGTERM" in stderr and "--resume auto" in stderr
    assert "\r" not in stdout  # log mode: plain lines only
    saved = find_latest_checkpoint(run_dir / "checkpoints")
    assert saved is not None and saved.name in stderr
    assert not (run_dir / "summary.json").exists()

    resumed = subprocess.run(
        [sys.executable, "-m", "ignite_mnist", "--resume", "auto", "--output-dir", str(tmp_path), "--run-name", "t"],
        capture_output=True, text=True, timeout=600,
    )
    assert resumed.returncode == 0, resumed.stderr
    assert_same_weights(final_model(run_dir), reference[0])

    again = subprocess.run(
        [sys.executable, "-m", "ignite_mnist", "--resume", "auto", "--output-dir", str(tmp_path), "--run-name", "t"],
        capture_output=True, text=True, timeout=600,
    )
    assert again.returncode == 0 and "already finished" in again.stdout
    assert find_latest_checkpoint(run_dir / "checkpoints").name == "last_checkpoint_860.pt"


def test_resume_with_another_model_is_refused(mnist_root, tmp_path, reference):
    run_dir = tmp_path / "m"
    process = start_and_wait_for(train_args(mnist_root, tmp_path, "m"),
                                 run_dir / "checkpoints" / "last_checkpoint_50.pt")
    process.kill()
    process.communicate()
    before = sorted(p.name for p in (run_dir / "checkpoints").iterdir())
    refused = subprocess.run(
        [sys.executable, "-m", "ignite_mnist", "--resume", "auto", "--output-dir", str(tmp_path), "--run-name", "m",
         "--model", "cnn"],
        capture_output=True, text=True, timeout=600,
    )
    assert refused.returncode == 1
    assert "checkpoint is for model 'mlp', not 'cnn'" in refused.stderr and refused.stderr.count("\n") == 1
    assert sorted(p.name for p in (run_dir / "checkpoints").iterdir()) == before
