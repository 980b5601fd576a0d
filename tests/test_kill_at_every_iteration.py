"""A hand-written trainer (examples/custom_trainer.py, on ignite-mnist's public handlers) killed with SIGKILL, or
stopped with Ctrl-C, at every iteration of two epochs, each epoch's last included, then run again: every time it
ends with the weights, checkpoint files and metrics rows of the run left alone. The iterations are counted, not
timed (tests/interrupts.py)."""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import make_idx_dataset
from tests.interrupts import assert_same_record, forked, record

pytestmark = pytest.mark.slow  # real processes stopped and run again, dozens of times

# 200 training images in batches of 50: 4 iterations an epoch; "last" checkpoints every 3 iterations and each epoch
ITERATIONS = 8
SETTINGS = ("--epochs", "2", "--batch-size", "50", "--val-size", "100", "--checkpoint-every", "3", "--patience", "10",
            "--progress", "none", "--wandb-mode", "disabled")


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_idx_dataset(tmp_path_factory.mktemp("small"), n_train=300, n_test=100)


def custom(data: Path, output: Path) -> list[str]:
    return ["--data-dir", str(data), "--output-dir", str(output), *SETTINGS]


@pytest.fixture(scope="module")
def alone(data: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    output = tmp_path_factory.mktemp("alone")
    assert forked("custom", custom(data, output), log=output / "log.txt") == 0
    return record("custom", output)


@pytest.mark.parametrize("signum", [signal.SIGKILL, signal.SIGINT], ids=["SIGKILL", "SIGINT"])
def test_stopped_at_any_iteration_and_run_again_it_ends_like_a_run_left_alone(
    signum: signal.Signals, data: Path, alone: dict[str, Any], tmp_path: Path
) -> None:
    for iteration in range(1, ITERATIONS + 1):
        output, log = tmp_path / str(iteration), tmp_path / f"{iteration}.log"
        stopped = forked("custom", custom(data, output), at=f"iteration:{iteration}", signum=signum, log=log)
        assert stopped == (-signal.SIGKILL if signum == signal.SIGKILL else 130), (iteration, log.read_text())
        assert forked("custom", custom(data, output), log=log) == 0, (iteration, log.read_text())
        assert_same_record(record("custom", output), alone)
        assert "Traceback" not in log.read_text()
