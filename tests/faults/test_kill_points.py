"""Crash consistency, point by point: a run killed (SIGKILL) or starved of disk at an exact point, then resumed,
ends with the weights, summary, best checkpoints and metrics rows of the same run left alone.

The points are the ones a real run passes, recorded by ``tests/faults/kill_driver.py``: every
event of the trainer and the evaluator, every step of every file write (a checkpoint half
written, before and after each atomic rename, half a metrics row, a plot), the final test and
the summary. CI runs a chosen few (``CI_POINTS``); ``IGNITE_MNIST_KILL_POINTS=all`` runs every
one (docs/resume.md lists them and how long that takes).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from ignite_mnist.storage.checkpoints import find_latest_checkpoint, load_checkpoint
from ignite_mnist.storage.run_dir import RunDir, read_metrics_log
from tests.conftest import assert_same_weights
from tests.faults.conftest import SUBPROCESS_ENV

pytestmark = pytest.mark.slow  # a training process killed at each point, then resumed

DRIVER = Path(__file__).with_name("kill_driver.py")
# 1,000 training images in batches of 100: 10 iterations per epoch, 20 in all; a checkpoint every 3
# iterations and at each epoch's end, a validation every 4 iterations and at each epoch's end, plots on.
SETTINGS = ("--val-size", "200", "--batch-size", "100", "--epochs", "2", "--checkpoint-every", "3",
            "--val-every-iterations", "4", "--keep-best", "2", "--progress", "none", "--wandb-mode", "disabled")
CI_POINTS = (
    "trainer:ITERATION_COMPLETED#5",  # between two checkpoints
    "write:torch.save:half#3",  # halfway through writing a checkpoint
    "write:replace:before#4",  # a checkpoint written, not yet renamed into place
    "evaluator:COMPLETED#2",  # a validation done, its metrics row, best and last checkpoints not yet written
    "write:append:half#1",  # half a metrics.jsonl row
    "trainer:EPOCH_COMPLETED#1",  # an epoch's end: validated, its metrics row and checkpoint not yet written
    "phase:test#1",  # training done, the final test about to start
    "write:figure:before#2",  # one plot drawn, the report not yet complete
)
#: Where the disk fills up, and what the next write is: a checkpoint, a metrics row, summary.json.
FILL_POINTS = ("trainer:ITERATION_COMPLETED#5", "evaluator:COMPLETED#1", "phase:test#1")
VARYING = {"run_dir", "train_seconds", "samples_per_second", "resumed_from", "resumed_at"}


def driver(mode: str, argument: str, data: Path, output: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, str(DRIVER), mode, argument, "--", "--data-dir", str(data), "--output-dir",
               str(output), "--run-name", "r", *SETTINGS, *extra]
    return subprocess.run(command, env=SUBPROCESS_ENV, capture_output=True, text=True, timeout=600)


def outcome(run_dir: Path) -> dict[str, Any]:
    """What must not depend on interruptions: final weights, summary, best checkpoints, metrics rows."""
    summary = json.loads((run_dir / "summary.json").read_text())
    best = {p.name: load_checkpoint(p)["model"] for p in sorted(run_dir.glob("checkpoints/best_*.pt"))}
    return {
        "weights": load_checkpoint(find_latest_checkpoint(run_dir / "checkpoints"))["model"],
        "summary": {k: v for k, v in summary.items() if k not in VARYING},
        "best": best,
        "rows": [{k: v for k, v in row.items() if k != "seconds"}
                 for row in read_metrics_log(run_dir / "metrics.jsonl")],
        "plots": sorted(p.name for p in (run_dir / "plots").iterdir()),
    }


def assert_same_outcome(got: dict[str, Any], expected: dict[str, Any]) -> None:
    assert_same_weights(expected["weights"], got["weights"])
    assert got["summary"] == expected["summary"]
    assert list(got["best"]) == list(expected["best"])  # the same best files, keep_best of them
    for name, weights in expected["best"].items():
        assert_same_weights(weights, got["best"][name])
    assert got["rows"] == expected["rows"]
    assert got["plots"] == expected["plots"]


@pytest.fixture(scope="module")
def reference(idx_root: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The run left alone, with the list of every point it passed."""
    output = tmp_path_factory.mktemp("alone")
    points = output / "points.json"
    done = driver("record", str(points), idx_root, output)
    assert done.returncode == 0, done.stderr
    return {"points": json.loads(points.read_text()), "outcome": outcome(output / "r")}


def selected_points() -> list[str]:
    if os.environ.get("IGNITE_MNIST_KILL_POINTS") != "all":
        return list(CI_POINTS)
    listing = Path(__file__).with_name("kill_points.txt")
    return [line.strip() for line in listing.read_text().splitlines() if line.strip() and not line.startswith("#")]


def resume_until_done(cli: Any, output: Path) -> None:
    """The run's own command line again with ``--resume auto``: it resumes, or starts afresh without a checkpoint."""
    resumed = cli("--resume", "auto", "--data-dir", output.parent / "data", "--output-dir", output, "--run-name", "r",
                  *SETTINGS)
    assert resumed.code == 0, resumed.err


def test_the_ci_points_are_points_a_run_passes(reference: dict[str, Any]) -> None:
    assert set(CI_POINTS) | set(FILL_POINTS) <= set(reference["points"])


@pytest.mark.parametrize("point", selected_points())
def test_killed_at_a_point_then_resumed_ends_like_the_run_left_alone(
    point: str, cli: Any, idx_root: Path, tmp_path: Path, reference: dict[str, Any]
) -> None:
    (tmp_path / "data").symlink_to(idx_root)
    output = tmp_path / "runs"
    killed = driver("kill", point, tmp_path / "data", output)
    assert killed.returncode == -signal.SIGKILL, f"{point} was never reached: {killed.stderr[-2000:]}"
    resume_until_done(cli, output)
    assert_same_outcome(outcome(output / "r"), reference["outcome"])


def test_one_resume_auto_line_starts_continues_and_leaves_a_finished_run_alone(
    idx_root: Path, tmp_path: Path, reference: dict[str, Any]
) -> None:
    """The line a batch script repeats, run as three real processes: killed in its first start, then again."""
    (tmp_path / "data").symlink_to(idx_root)
    output = tmp_path / "runs"
    killed = driver("kill", "trainer:ITERATION_COMPLETED#5", tmp_path / "data", output, "--resume", "auto")
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    assert f"--resume auto: nothing to resume in {output / 'r'} (no checkpoint yet); starting it fresh" in killed.stdout
    line = [sys.executable, "-m", "ignite_mnist", "--resume", "auto", "--data-dir", str(tmp_path / "data"),
            "--output-dir", str(output), "--run-name", "r", *SETTINGS]
    resumed = subprocess.run(line, env=SUBPROCESS_ENV, capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr
    assert f"--resume auto: continuing {output / 'r'} from last_checkpoint_3.pt (iteration 3)" in resumed.stdout
    assert_same_outcome(outcome(output / "r"), reference["outcome"])
    again = subprocess.run(line, env=SUBPROCESS_ENV, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0 and "already finished" in again.stdout, again.stderr
    assert_same_outcome(outcome(output / "r"), reference["outcome"])


@pytest.mark.parametrize("point", FILL_POINTS)
def test_a_full_disk_at_a_point_is_one_line_and_resume_ends_like_the_run_left_alone(
    point: str, cli: Any, idx_root: Path, tmp_path: Path, reference: dict[str, Any], tmpfs: Any
) -> None:
    disk = tmpfs("disk", "size=24m")
    (tmp_path / "data").symlink_to(idx_root)
    failed = driver("fill", point, tmp_path / "data", disk)
    line = failed.stderr.strip()
    assert failed.returncode == 1 and line.count("\n") == 0, failed.stderr
    assert line.startswith("ignite-mnist: error: cannot write") and "No space left on device" in line
    run_dir = RunDir(disk / "r")
    if point == "phase:test#1":
        assert "training had finished and its checkpoints are intact; write the report with: ignite-mnist" in line
    else:
        assert f"the newest intact one is {run_dir.latest_checkpoint()}" in line or (
            f"the newest intact checkpoint is {run_dir.latest_checkpoint()}" in line)
    assert not list(disk.rglob("*.partial"))
    (disk / "filler").unlink()
    resume_until_done(cli, disk)
    assert_same_outcome(outcome(disk / "r"), reference["outcome"])


def test_the_listed_points_are_the_points_a_run_passes(reference: dict[str, Any]) -> None:
    """kill_points.txt (what IGNITE_MNIST_KILL_POINTS=all runs) is what a run of these settings passes today."""
    listing = Path(__file__).with_name("kill_points.txt").read_text().splitlines()
    assert [line for line in listing if line and not line.startswith("#")] == reference["points"]
