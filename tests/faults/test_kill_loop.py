"""Five SIGKILLs at seeded points of one run, each followed by ``--resume auto``: the weights end up
``torch.equal`` to those of the same run left alone (real MNIST, real processes)."""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ignite_mnist.storage.checkpoints import checkpoint_iteration, find_latest_checkpoint
from tests.conftest import assert_same_weights
from tests.faults.conftest import QUIET, SUBPROCESS_ENV, assert_loadable

pytestmark = pytest.mark.integration

# 55,000 training images in batches of 128: 430 iterations per epoch, 860 in all.
SETTINGS = ("--model", "mlp", "--epochs", "2", "--batch-size", "128", "--checkpoint-every", "50", *QUIET)
FINAL_ITERATION = 860


def kill_points(seed: int) -> list[int]:
    """Five checkpoint iterations at least 150 apart, so no kill overshoots the next target."""
    rng = random.Random(seed)
    return [rng.choice((50 + 150 * i, 100 + 150 * i)) for i in range(5)]


def newest_iteration(checkpoints: Path) -> int:
    latest = find_latest_checkpoint(checkpoints)
    return checkpoint_iteration(latest) if latest is not None else 0


def train(mnist_root: Path, output: Path, name: str) -> list[str]:
    return [sys.executable, "-m", "ignite_mnist", "--data-dir", str(mnist_root), "--output-dir", str(output),
            "--run-name", name, *SETTINGS]


def test_five_sigkills_then_resume_auto_match_the_uninterrupted_run(mnist_root: Path, tmp_path: Path) -> None:
    output = tmp_path / "runs"
    alone = subprocess.run(train(mnist_root, output, "alone"), env=SUBPROCESS_ENV, capture_output=True, text=True,
                           timeout=900)
    assert alone.returncode == 0, alone.stderr
    expected = assert_loadable(find_latest_checkpoint(output / "alone" / "checkpoints"))

    rng = random.Random(6)
    checkpoints = output / "killed" / "checkpoints"
    base = train(mnist_root, output, "killed")
    for number, target in enumerate(kill_points(seed=6)):
        process = subprocess.Popen(base + (["--resume", "auto"] if number else []), env=SUBPROCESS_ENV,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        try:
            while newest_iteration(checkpoints) < target:
                assert process.poll() is None, process.communicate()[1]
                time.sleep(0.01)
            time.sleep(rng.uniform(0.0, 0.2))
        finally:
            process.send_signal(signal.SIGKILL)
            process.communicate()
        assert process.returncode == -signal.SIGKILL, f"kill {number} at {target}: the run had already ended"

    finished = subprocess.run([*base, "--resume", "auto"], env=SUBPROCESS_ENV, capture_output=True, text=True,
                              timeout=900)
    assert finished.returncode == 0, finished.stderr
    final = assert_loadable(find_latest_checkpoint(checkpoints))
    assert final["trainer"]["iteration"] == expected["trainer"]["iteration"] == FINAL_ITERATION
    assert_same_weights(expected["model"], final["model"])
