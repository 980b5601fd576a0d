"""Training faults: a diverging loss stops with one line; SIGINT during validation leaves a resumable checkpoint."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import torch

from ignite_mnist.storage.checkpoints import find_latest_checkpoint
from tests.conftest import assert_same_weights
from tests.faults.conftest import QUIET, SUBPROCESS_ENV, TINY, assert_loadable, assert_one_line_error

# Holds the first validation open until the test has sent its signal: the signal lands during
# validation on every machine, however loaded. A test instrument, not a stand-in for the code under test.
HOLD_VALIDATION = """
import sys, time
from pathlib import Path
from ignite.engine import Events
import ignite_mnist.training.parts as parts
from ignite_mnist.cli import main

inside, sent = Path(sys.argv[1]), Path(sys.argv[2])
build = parts.create_evaluator

def held_evaluator(*args, **kwargs):
    evaluator = build(*args, **kwargs)

    def hold(engine):
        if not inside.exists():
            inside.touch()
            while not sent.exists():
                time.sleep(0.01)

    evaluator.add_event_handler(Events.ITERATION_COMPLETED, hold)
    return evaluator

parts.create_evaluator = held_evaluator
raise SystemExit(main(sys.argv[3:]))
"""


def test_a_loss_that_blows_up_at_once_leaves_no_checkpoint_to_go_on_from(cli, idx_root: Path, tmp_path: Path) -> None:
    """SGD at lr 1e6 sends the ConvNet's loss to NaN at iteration 3 on the generated data.

    The weights saved after iterations 1 and 2 are finite but blown up (a validation
    loss of ~1e21, or NaN): neither is named as a place to go on from.
    """
    result = cli("--data-dir", idx_root, "--output-dir", tmp_path / "runs", "--run-name", "nan", *TINY, *QUIET,
                 "--model", "cnn", "--optimizer", "sgd", "--lr", "1e6", "--checkpoint-every", "1")
    checkpoints = tmp_path / "runs" / "nan" / "checkpoints"
    assert_one_line_error(result, 1, "loss became nan at iteration 3 (epoch 1); stopped",
                          "No usable checkpoint was saved before; start again with a lower --lr")
    assert sorted(p.name for p in checkpoints.iterdir()) == ["last_checkpoint_1.pt", "last_checkpoint_2.pt"]
    assert all(torch.isfinite(t).all() for t in assert_loadable(checkpoints / "last_checkpoint_2.pt")["model"].values())
    assert not (tmp_path / "runs" / "nan" / "summary.json").exists()


def test_a_diverging_loss_names_a_checkpoint_that_trains_on(cli, idx_root: Path, tmp_path: Path) -> None:
    """SGD at lr 3 diverges at iteration 14; the last checkpoints before it are blown up, the best one is not."""
    result = cli("--data-dir", idx_root, "--output-dir", tmp_path / "runs", "--run-name", "nan", *TINY, *QUIET,
                 "--model", "cnn", "--optimizer", "sgd", "--lr", "3", "--checkpoint-every", "1",
                 "--val-every-iterations", "5")
    line = assert_one_line_error(result, 1, "loss became nan at iteration 14 (epoch 1); stopped",
                                 "The last good checkpoint is ", "best_checkpoint_", "--allow-config-change")
    advice = line.split(": --resume ")[1].replace("--lr LR", "--lr 0.01").split()
    resumed = cli("--resume", *advice, "--output-dir", tmp_path / "runs", "--run-name", "on", *QUIET)
    assert resumed.code == 0, resumed.err  # the named checkpoint trains on at a lower learning rate


def test_sigint_during_validation_leaves_a_resumable_checkpoint(cli, idx_root: Path, tmp_path: Path) -> None:
    inside, sent = tmp_path / "validating", tmp_path / "signal-sent"
    output = tmp_path / "runs"
    args = ("--data-dir", str(idx_root), "--output-dir", str(output), *TINY, *QUIET, "--epochs", "2")
    process = subprocess.Popen(
        [sys.executable, "-c", HOLD_VALIDATION, str(inside), str(sent), *args, "--run-name", "held"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=SUBPROCESS_ENV,
    )
    try:
        while not inside.exists():  # epoch 1 is done and its validation is running
            assert process.poll() is None, process.communicate()
            time.sleep(0.05)
        process.send_signal(signal.SIGINT)
        sent.touch()
        _, err = process.communicate(timeout=300)
    finally:
        process.kill()
    run_dir = output / "held"
    saved = run_dir / "checkpoints" / "last_checkpoint_16.pt"
    assert process.returncode == 130, err
    assert err.splitlines() == [
        (f"ignite-mnist: interrupted by SIGINT at iteration 16 (epoch 1); checkpoint saved to {saved}; "
        f"resume with: ignite-mnist --resume auto --output-dir {output} --run-name held")
    ]
    assert assert_loadable(saved)["trainer"]["iteration"] == 16

    resumed = cli("--resume", "auto", "--output-dir", output, "--run-name", "held", *QUIET)
    reference = cli(*args, "--run-name", "reference")
    assert resumed.code == 0 and reference.code == 0, resumed.err + reference.err
    final = assert_loadable(find_latest_checkpoint(run_dir / "checkpoints"))
    expected = assert_loadable(find_latest_checkpoint(output / "reference" / "checkpoints"))
    assert final["trainer"]["iteration"] == expected["trainer"]["iteration"] == 32
    assert_same_weights(expected["model"], final["model"])
