"""examples/custom_trainer.py (the code docs/handlers.md walks through) and examples/ignite_style_trainer.py (Ignite's
own MNIST example plus a dozen lines): a user's own Engine with ignite-mnist's public kit gets the managed run's
guards: run again once finished it changes nothing; a save cut short leaves no temporary; stopped anywhere it ends
where a run left alone ends (tests/test_interrupts.py, tests/test_kill_at_every_iteration.py stop them at exact
points); Ignite's stock trainer (a float loss) gets loss averages; a loss monitor keeps the lowest values."""

from __future__ import annotations

import hashlib
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from ignite_mnist.storage.checkpoints import find_latest_checkpoint, load_checkpoint
from ignite_mnist.storage.run_dir import read_metrics_log
from tests.conftest import REPO
from tests.handlers.test_wandb import inspect
from tests.interrupts import assert_same_record, forked, record

EXAMPLE = REPO / "examples" / "custom_trainer.py"
MINIMAL = REPO / "examples" / "ignite_style_trainer.py"
DOC = REPO / "docs" / "handlers.md"
SMALL = ("--epochs", "2", "--batch-size", "64", "--val-size", "200", "--patience", "10", "--checkpoint-every", "5")
OPTIONS = {"custom": ("--progress", "none", "--wandb-mode", "disabled"), "ignite_style": ("--log-interval", "1000")}


def arguments(target: str, data: Path, output: Path, *extra: str) -> list[str]:
    return ["--data-dir", str(data), "--output-dir", str(output), *SMALL, *OPTIONS[target], *extra]


def fingerprint(folder: Path) -> dict[str, str]:
    """Every file under ``folder`` and a hash of its bytes."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("target", ["custom", "ignite_style"])
def test_a_finished_run_run_again_says_so_in_one_line_and_changes_no_file(
    target: str, idx_root: Path, tmp_path: Path
) -> None:
    script = EXAMPLE if target == "custom" else MINIMAL
    command = [sys.executable, str(script), *arguments(target, idx_root, tmp_path / "run")]
    first = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert first.returncode == 0, first.stderr
    before = fingerprint(tmp_path / "run")
    again = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr
    assert fingerprint(tmp_path / "run") == before
    (line,) = again.stdout.splitlines()
    assert re.fullmatch(r".*/last_checkpoint_32\.pt: this run already finished at epoch 2 \(iteration 32\); "
                        r"nothing to train", line), line


def test_a_save_cut_short_leaves_no_temporary_once_the_custom_trainer_runs_again(idx_root: Path, tmp_path: Path
                                                                                  ) -> None:
    """Killed inside its second save, with the temporary a kill between a save's write and its rename leaves."""
    argv = arguments("custom", idx_root, tmp_path)
    assert forked("custom", argv, at="saved:2", signum=signal.SIGKILL, log=tmp_path / "log") == -signal.SIGKILL
    stray = tmp_path / "checkpoints" / "tmpa1b2c3d4"  # what a kill between write and rename leaves
    stray.write_bytes(b"half a checkpoint")
    assert forked("custom", argv, log=tmp_path / "log") == 0
    assert not stray.exists() and f"removed {stray}" in (tmp_path / "log").read_text()
    assert not [p for p in (tmp_path / "checkpoints").iterdir() if not p.name.endswith(".pt")]


def test_ignite_stock_trainer_gets_loss_averages_and_a_loss_monitor_keeps_the_lowest(idx_root: Path, tmp_path: Path
                                                                                      ) -> None:
    """The Ignite-style example: create_supervised_trainer (its output is loss.item(), a float) and val_nll."""
    argv = arguments("ignite_style", idx_root, tmp_path, "--epochs", "4", "--monitor", "val_nll")
    assert forked("ignite_style", argv, log=tmp_path / "log") == 0, (tmp_path / "log").read_text()
    rows = read_metrics_log(tmp_path / "metrics.jsonl")
    assert all(isinstance(row["train_loss"], float) for row in rows) and len(rows) == 4
    lowest = sorted(rows, key=lambda row: row["val_nll"])[:2]  # keep_best=2: the two lowest validation losses
    best = sorted(p.name for p in (tmp_path / "checkpoints").glob("best_*"))
    assert best == sorted(f"best_checkpoint_{row['iteration']}_nll={-row['val_nll']:.4f}.pt" for row in lowest)
    assert "Traceback" not in (tmp_path / "log").read_text()


def test_sigterm_ends_the_custom_trainer_with_143_and_a_resumable_checkpoint(idx_root: Path, tmp_path: Path) -> None:
    log = tmp_path / "log"
    stopped = forked("custom", arguments("custom", idx_root, tmp_path), at="iteration:8", signum=signal.SIGTERM,
                     log=log)
    assert stopped == 143 and "Traceback" not in log.read_text()
    saved = find_latest_checkpoint(tmp_path / "checkpoints")
    assert saved is not None and saved.name == "last_checkpoint_8.pt"
    assert f"interrupted by SIGTERM at iteration 8 (epoch 1); checkpoint saved to {saved}" in log.read_text()
    state = torch.load(saved, weights_only=True)
    assert set(state) >= {"loss_averages", "record", "metrics_log", "wandb", "early_stopping", "train_loader"}


@pytest.mark.integration
def test_the_custom_trainer_stopped_four_times_on_real_mnist_is_one_wandb_run_ending_like_a_run_left_alone(
    mnist_root: Path, tmp_path: Path, isolated_wandb: Path
) -> None:
    """55,000 images in batches of 128: 430 iterations an epoch, 860 in all; W&B offline."""
    def argv(output: Path) -> list[str]:
        return ["--data-dir", str(mnist_root), "--output-dir", str(output), "--epochs", "2", "--batch-size", "128",
                "--val-size", "5000", "--patience", "10", "--checkpoint-every", "50", "--progress", "none",
                "--wandb-mode", "offline"]

    assert forked("custom", argv(tmp_path / "alone"), log=tmp_path / "alone.log") == 0
    # each stop comes after a checkpoint of its own process, which waits for the W&B run started beside training:
    # every process has its run folder, whatever the timing
    output, stops = tmp_path / "stopped", [("iteration:120", signal.SIGKILL), ("iteration:430", signal.SIGINT),
                                           ("iteration:470", signal.SIGKILL), ("iteration:700", signal.SIGINT)]
    for at, signum in stops:
        log = tmp_path / "stopped.log"
        exit_code = forked("custom", argv(output), at=at, signum=signum, log=log)
        assert exit_code == (-signal.SIGKILL if signum == signal.SIGKILL else 130), log.read_text()
    assert forked("custom", argv(output), log=tmp_path / "stopped.log") == 0
    assert_same_record(record("custom", output), record("custom", tmp_path / "alone"))

    runs = sorted((isolated_wandb / "wandb_dir" / "wandb").glob("offline-run-*"))
    ids = {path.stem.removeprefix("run-") for run in runs for path in run.glob("run-*.wandb")}
    assert len(runs) == 1 + len(stops) + 1 and len(ids) == 2  # the alone run, and one run resumed four times
    # a SIGKILL-ed process's W&B records may die with it; the SIGINT-ed ones closed their run first
    interrupted = [run for run, (_, signum) in zip(runs[1:], stops, strict=False) if signum == signal.SIGINT]
    assert [inspect(run, "--summary")["summary"]["status"] for run in interrupted] == ["interrupted"] * 2
    assert inspect(runs[-1], "--summary")["summary"]["status"] == "finished"
    final = load_checkpoint(find_latest_checkpoint(output / "checkpoints"))
    assert final["trainer"]["iteration"] == 860


def code_blocks(markdown: str) -> list[str]:
    return [block.strip("\n") for block in re.findall(r"```python\n(.*?)```", markdown, flags=re.DOTALL)]


def example_sections(source: str) -> dict[str, str]:
    """The marked sections of an example (``# --8<-- [start:name]`` ... ``[end:name]``), dedented."""
    import textwrap

    found = re.findall(r"^[ \t]*# --8<-- \[start:(\w+)\]\n(.*?)^[ \t]*# --8<-- \[end:\1\]", source,
                       flags=re.DOTALL | re.MULTILINE)
    return {name: textwrap.dedent(body).strip("\n") for name, body in found}


def test_the_walk_through_in_docs_shows_the_example_files_sections_as_they_are() -> None:
    """docs/handlers.md is plain Markdown (readable on a code host); each marked section of both examples appears
    in it as a code block, in order, word for word."""
    doc = DOC.read_text()
    assert "--8<--" not in doc
    blocks = code_blocks(doc)
    for example in (EXAMPLE, MINIMAL):
        sections = list(example_sections(example.read_text()).values())
        assert sections, example
        positions = [blocks.index(section) for section in sections]  # ValueError: a section is not in the docs
        assert positions == sorted(positions), example
