"""Elastic restarts: a 2-process torchrun job whose worker is SIGKILLed mid-epoch, restarted by torchrun.

``torchrun --max-restarts 1`` starts both ranks again after one dies; the one command line
(``--resume auto --run-name``) starts fresh the first time and continues the run the second.
The job must end as the same job left alone: the same weights (bit for bit: gloo on CPU is
deterministic), the same summary and the same ``metrics.jsonl`` rows. The kill is the
fault tests' driver (``tests/faults/kill_driver.py``) with ``$KILL_DRIVER_RANK`` naming the
rank that dies; it does not die again in torchrun's restart.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from ignite_mnist.storage.checkpoints import find_latest_checkpoint, load_checkpoint
from ignite_mnist.storage.run_dir import read_metrics_log
from tests.conftest import REPO, assert_same_weights
from tests.faults.kill_driver import KILL_RANK

pytestmark = pytest.mark.slow  # torchrun restarts a killed worker

DRIVER = REPO / "tests" / "faults" / "kill_driver.py"
# 1,000 training images in global batches of 50 (25 per rank): 20 iterations per epoch, 2 epochs;
# a checkpoint every 6 iterations; rank 1 dies after iteration 9 of epoch 1 (a checkpoint at 6 stands).
FLAGS = ("--val-size", "200", "--batch-size", "50", "--epochs", "2", "--checkpoint-every", "6", "--backend", "gloo",
         "--device", "cpu", "--progress", "none", "--no-plots", "--wandb-mode", "disabled", "--resume", "auto",
         "--run-name", "job")
KILL_POINT = "trainer:ITERATION_COMPLETED#9"
VARYING = {"run_dir", "train_seconds", "samples_per_second", "resumed_from", "resumed_at"}


def torchrun(data: Path, output: Path, *driver: str, **env: str) -> subprocess.Popen[str]:
    """Start ``torchrun --standalone --nproc-per-node 2 --max-restarts 1`` of the kill driver (or ``ignite_mnist``)."""
    launcher = shutil.which("torchrun", path=str(Path(sys.executable).parent))
    assert launcher is not None
    program = [str(DRIVER), *driver, "--"] if driver else ["-m", "ignite_mnist"]
    command = [launcher, "--standalone", "--nproc-per-node", "2", "--max-restarts", "1", "--monitor-interval", "0.1",
               *program, "--data-dir", str(data), "--output-dir", str(output), *FLAGS]
    clean = {k: v for k, v in os.environ.items() if k not in ("MASTER_PORT", "WORLD_SIZE", "RANK", KILL_RANK)}
    return subprocess.Popen(command, env={**clean, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", **env},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)


def finish(process: subprocess.Popen[str]) -> subprocess.CompletedProcess[str]:
    """Wait for a job; a hang leaves no process behind."""
    try:
        stdout, stderr = process.communicate(timeout=240)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.communicate()
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


def outcome(run_dir: Path) -> dict[str, Any]:
    summary = json.loads((run_dir / "summary.json").read_text())
    return {
        "weights": load_checkpoint(find_latest_checkpoint(run_dir / "checkpoints"))["model"],
        "summary": {k: v for k, v in summary.items() if k not in VARYING},
        "rows": [{k: v for k, v in row.items() if k != "seconds"}
                 for row in read_metrics_log(run_dir / "metrics.jsonl")],
        "resumed_at": summary["resumed_at"],
    }


def test_a_worker_killed_mid_epoch_is_restarted_by_torchrun_and_ends_like_the_job_left_alone(
    idx_root: Path, tmp_path: Path
) -> None:
    jobs = [torchrun(idx_root, tmp_path / "alone"),  # both at once: the start of four processes is most of it
            torchrun(idx_root, tmp_path / "killed", "kill", KILL_POINT, **{KILL_RANK: "1"})]
    alone, killed = [finish(job) for job in jobs]
    assert alone.returncode == 0, alone.stderr[-3000:]
    assert alone.stdout.count("--resume auto: nothing to resume") == 1 and "continuing" not in alone.stdout
    assert killed.returncode == 0, killed.stderr[-3000:]
    assert "failed (exitcode: -9) local_rank: 1" in killed.stderr, killed.stderr[-3000:]  # SIGKILL, then restarted
    # the first attempt started fresh, torchrun's restart continued from the checkpoint at iteration 6
    assert "--resume auto: nothing to resume" in killed.stdout
    assert killed.stdout.count("--resume auto: continuing") == 1 and "(iteration 6)" in killed.stdout, killed.stdout

    expected, got = outcome(tmp_path / "alone" / "job"), outcome(tmp_path / "killed" / "job")
    assert expected["resumed_at"] == [] and got["resumed_at"] == [6]
    assert_same_weights(expected["weights"], got["weights"])
    assert got["summary"] == expected["summary"]
    assert got["rows"] == expected["rows"] and [r["epoch"] for r in got["rows"] if r["kind"] == "epoch"] == [1, 2]


@pytest.mark.parametrize("rank", ["0", "1"])
def test_the_kill_driver_kills_only_the_named_rank_in_the_first_attempt(rank: str, monkeypatch) -> None:
    from tests.faults import kill_driver

    monkeypatch.setenv(KILL_RANK, rank)
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("TORCHELASTIC_RESTART_COUNT", "0")
    assert kill_driver.armed() == (rank == "1")
    monkeypatch.setenv("TORCHELASTIC_RESTART_COUNT", "1")
    assert not kill_driver.armed()
