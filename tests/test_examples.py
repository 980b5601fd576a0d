"""examples/custom_trainer.py (the code docs/handlers.md walks through) and examples/ignite_style_trainer.py (Ignite's
own MNIST example plus a dozen lines): a user's own Engine with ignite-mnist's handlers, interrupted again and
again, ends exactly where an uninterrupted run ends."""

from __future__ import annotations

import os
import random
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from ignite_mnist.storage.checkpoints import checkpoint_iteration, find_latest_checkpoint, load_checkpoint
from ignite_mnist.storage.run_dir import read_metrics_log
from tests.conftest import REPO, assert_same_weights
from tests.handlers.test_wandb import inspect

EXAMPLE = REPO / "examples" / "custom_trainer.py"
MINIMAL = REPO / "examples" / "ignite_style_trainer.py"
DOC = REPO / "docs" / "handlers.md"
# real MNIST, 55,000 training images in batches of 128: 430 iterations per epoch, 860 in all
SETTINGS = ("--epochs", "2", "--batch-size", "128", "--val-size", "5000", "--patience", "10",
            "--checkpoint-every", "50", "--progress", "none", "--wandb-mode", "offline")
INTERRUPTIONS = (signal.SIGKILL, signal.SIGINT, signal.SIGKILL, signal.SIGINT, signal.SIGKILL, signal.SIGINT)


def env() -> dict[str, str]:
    """This test's environment (its own W&B folders, see conftest), with one intra-op thread."""
    return {**os.environ, "OMP_NUM_THREADS": "1"}


def example(root: Path, output: Path, *extra: str) -> list[str]:
    return [sys.executable, str(EXAMPLE), "--data-dir", str(root), "--output-dir", str(output), *SETTINGS, *extra]


def newest_iteration(output: Path) -> int:
    latest = find_latest_checkpoint(output / "checkpoints")
    return checkpoint_iteration(latest) if latest is not None else 0


def without_timing(rows: list[dict]) -> list[dict]:
    return [{k: v for k, v in row.items() if k != "seconds"} for row in rows]


def interrupt_after(command: list[str], output: Path, target: int, signum: signal.Signals, delay: float
                    ) -> subprocess.CompletedProcess[str]:
    """Start ``command``, wait for the checkpoint of iteration ``target``, then send ``signum``."""
    process = subprocess.Popen(command, env=env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        while newest_iteration(output) < target:
            assert process.poll() is None, process.communicate()
            time.sleep(0.01)
        time.sleep(delay)
    finally:
        process.send_signal(signum)
        stdout, stderr = process.communicate(timeout=120)
    return subprocess.CompletedProcess(command, process.returncode, stdout, stderr)


def interrupt_and_rerun(command: list[str], output: Path, signals: tuple[signal.Signals, ...], first: int, step: int,
                        says: bool = True) -> subprocess.CompletedProcess[str]:
    """Run ``command`` again and again, sending each signal after the checkpoint of iteration ``first + step * n``;
    then let it finish. SIGINT must end it with 130 and a checkpoint (named on stderr when ``says``), SIGKILL
    kill it."""
    rng = random.Random(13)
    for number, signum in enumerate(signals):
        result = interrupt_after(command, output, first + step * number, signum, rng.uniform(0.0, 0.2))
        if signum == signal.SIGKILL:
            assert result.returncode == -signal.SIGKILL, f"interruption {number}: the run had already ended"
            continue
        assert result.returncode == 130, result.stderr
        assert "test accuracy" not in result.stdout and "best checkpoint" not in result.stdout  # no test then
        lines = [line for line in result.stderr.splitlines() if "interrupted by" in line]
        assert len(lines) == says and "Traceback" not in result.stderr
        assert not says or re.search(r"interrupted by SIGINT at iteration \d+ .*checkpoint saved to "
                                     r".*last_checkpoint_\d+\.pt", lines[0])
    finished = subprocess.run(command, env=env(), capture_output=True, text=True, timeout=600)
    assert finished.returncode == 0, finished.stderr
    assert finished.stdout.startswith(f"resumed from {output}/checkpoints/last_checkpoint_")
    return finished


def assert_same_run(alone: Path, interrupted: Path) -> None:
    """The same final weights and the same metrics rows (their timings aside)."""
    expected = load_checkpoint(find_latest_checkpoint(alone / "checkpoints"))
    final = load_checkpoint(find_latest_checkpoint(interrupted / "checkpoints"))
    assert final["trainer"]["iteration"] == expected["trainer"]["iteration"]
    assert_same_weights(expected["model"], final["model"])
    assert without_timing(read_metrics_log(interrupted / "metrics.jsonl")) == without_timing(
        read_metrics_log(alone / "metrics.jsonl"))


@pytest.mark.slow  # the example trainers killed and interrupted in subprocesses
def test_the_ignite_style_example_killed_and_interrupted_ends_like_a_run_left_alone(idx_root: Path, tmp_path: Path
                                                                                   ) -> None:
    """Generated IDX data: 1,000 training images in batches of 32, 32 iterations per epoch, 128 in all."""
    def command(output: Path) -> list[str]:
        return [sys.executable, str(MINIMAL), "--data-dir", str(idx_root), "--output-dir", str(output),
                "--epochs", "4", "--batch-size", "32", "--val-size", "200", "--patience", "10",
                "--checkpoint-every", "5", "--log-interval", "1000"]

    alone = subprocess.run(command(tmp_path / "alone"), env=env(), capture_output=True, text=True, timeout=600)
    assert alone.returncode == 0, alone.stderr
    output = tmp_path / "interrupted"
    signals = (signal.SIGKILL, signal.SIGINT, signal.SIGKILL, signal.SIGINT)
    interrupt_and_rerun(command(output), output, signals, first=10, step=25, says=False)
    assert_same_run(tmp_path / "alone", output)
    assert load_checkpoint(find_latest_checkpoint(output / "checkpoints"))["trainer"]["iteration"] == 128
    assert "warning" not in alone.stderr  # everything stateful is saved
    assert list(output.glob("events.out.tfevents.*"))  # TensorBoard logs in the run's folder itself


@pytest.mark.integration
def test_interrupted_six_times_the_custom_trainer_ends_like_an_uninterrupted_run(
    mnist_root: Path, tmp_path: Path, isolated_wandb: Path
) -> None:
    alone = subprocess.run(example(mnist_root, tmp_path / "alone"), env=env(), capture_output=True, text=True,
                           timeout=600)
    assert alone.returncode == 0, alone.stderr
    expected = load_checkpoint(find_latest_checkpoint(tmp_path / "alone" / "checkpoints"))

    output = tmp_path / "interrupted"
    interrupt_and_rerun(example(mnist_root, output), output, INTERRUPTIONS, first=50, step=130)
    assert_same_run(tmp_path / "alone", output)
    final = load_checkpoint(find_latest_checkpoint(output / "checkpoints"))
    assert final["trainer"]["iteration"] == 860 and final["record"]["best"] == expected["record"]["best"]

    runs = sorted((isolated_wandb / "wandb_dir" / "wandb").glob("offline-run-*"))
    ids = {path.stem.removeprefix("run-") for run in runs for path in run.glob("run-*.wandb")}
    assert len(runs) == 1 + 1 + len(INTERRUPTIONS) and len(ids) == 2  # the alone run, and one run resumed 6 times
    # a SIGKILL-ed process's W&B records may die with it; the SIGINT-ed ones closed their run first
    interrupted = [run for run, signum in zip(runs[1:], INTERRUPTIONS) if signum == signal.SIGINT]
    assert [inspect(run, "--summary")["summary"]["status"] for run in interrupted] == ["interrupted"] * 3
    assert inspect(runs[-1], "--summary")["summary"]["status"] == "finished"


@pytest.mark.slow  # the example trainers killed and interrupted in subprocesses
def test_sigterm_ends_the_custom_trainer_with_143_and_a_resumable_checkpoint(idx_root: Path, tmp_path: Path) -> None:
    command = [sys.executable, str(EXAMPLE), "--data-dir", str(idx_root), "--output-dir", str(tmp_path),
               "--val-size", "200", "--epochs", "200", "--patience", "500", "--progress", "none"]
    result = interrupt_after(command, tmp_path, 16, signal.SIGTERM, 0.0)
    assert result.returncode == 143, result.stderr
    assert "interrupted by SIGTERM" in result.stderr and "Traceback" not in result.stderr
    saved = find_latest_checkpoint(tmp_path / "checkpoints")
    assert str(saved) in result.stderr
    state = torch.load(saved, weights_only=True)
    assert state["trainer"]["iteration"] > 16 and set(state) >= {"loss_averages", "record", "metrics_log", "wandb"}


def test_the_walk_through_in_docs_is_the_example_file() -> None:
    """docs/handlers.md shows the example in sections (pymdownx.snippets): every section, in order, each once."""
    sections = re.findall(r"--8<-- \[start:(\w+)\]", EXAMPLE.read_text())
    included = re.findall(r'--8<-- "examples/custom_trainer\.py:(\w+)"', DOC.read_text())
    assert included == sections and len(set(sections)) == len(sections) >= 6
