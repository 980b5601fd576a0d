"""A Ctrl-C or SIGTERM at a chosen point (an epoch's last iteration, the first of the next, mid-validation, inside
a save), then the same command again: the command line and both examples end with the record of a run left alone:
the same metrics rows, the same checkpoint files holding the same weights (and the same summary for the command
line). The points are counted, never timed (tests/interrupts.py); the runs are real processes."""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import make_idx_dataset
from tests.interrupts import assert_same_record, forked, record

pytestmark = pytest.mark.slow  # real processes stopped and run again, dozens of times

# 200 training images in batches of 50: 4 iterations an epoch, 8 in two; a "last" checkpoint every 3 and at epoch ends
EPOCH = 4
COMMON = ("--epochs", "2", "--batch-size", "50", "--val-size", "100", "--checkpoint-every", "3")
ARGS = {
    "cli": (*COMMON, "--run-name", "r", "--threads", "1", "--tracker", "none", "--no-plots", "--progress", "none",
            "--resume", "auto"),
    "custom": (*COMMON, "--patience", "10", "--progress", "none", "--wandb-mode", "disabled"),
    "ignite_style": (*COMMON, "--patience", "10", "--log-interval", "1000"),
}
EXIT = {signal.SIGINT: 130, signal.SIGTERM: 143}
POINTS = {
    "last iteration of an epoch": f"iteration:{EPOCH}",
    "first iteration of the next": f"iteration:{EPOCH + 1}",
    "mid-validation": "validation:1",
    "inside a save": "saved:2",
}


@pytest.fixture(scope="module")
def small_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_idx_dataset(tmp_path_factory.mktemp("small"), n_train=300, n_test=100)


def command(target: str, data: Path, output: Path) -> list[str]:
    return ["--data-dir", str(data), "--output-dir", str(output), *ARGS[target]]


@pytest.fixture(scope="module")
def alone(small_data: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    """Each target's record when nothing stops it."""
    records = {}
    for target in ARGS:
        output = tmp_path_factory.mktemp(f"alone-{target}")
        assert forked(target, command(target, small_data, output), log=output.with_suffix(".log")) == 0
        records[target] = record(target, output)
    assert [row["iteration"] for row in records["cli"]["rows"]] == [EPOCH, 2 * EPOCH]
    return records


@pytest.mark.parametrize("point", sorted(POINTS))
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
@pytest.mark.parametrize("target", sorted(ARGS))
def test_a_signal_then_the_same_command_again_ends_like_a_run_left_alone(
    target: str, signum: signal.Signals, point: str, small_data: Path, alone: dict[str, Any], tmp_path: Path
) -> None:
    log = tmp_path / "log.txt"
    argv = command(target, small_data, tmp_path)
    assert forked(target, argv, at=POINTS[point], signum=signum, log=log) == EXIT[signum], log.read_text()
    said = log.read_text()
    assert "Traceback" not in said
    assert target == "ignite_style" or f"interrupted by {signum.name}" in said  # it says nothing of its own
    assert forked(target, argv, log=log) == 0, log.read_text()
    assert_same_record(record(target, tmp_path), alone[target])
