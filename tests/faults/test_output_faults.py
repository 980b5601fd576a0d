"""Output faults: unwritable folders, a run dir that holds another run or is in use, a disk that fills up."""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import torch

from ignite_mnist.storage.checkpoints import find_latest_checkpoint
from tests.faults.conftest import QUIET, SUBPROCESS_ENV, TINY, assert_loadable, assert_one_line_error, snapshot


def train_args(idx_root: Path, output: Path, name: str = "run", *extra: str) -> tuple[str, ...]:
    return ("--data-dir", str(idx_root), "--output-dir", str(output), "--run-name", name, *TINY, *QUIET, *extra)


def test_output_dir_under_a_regular_file(cli, idx_root: Path, tmp_path: Path) -> None:
    """Tests run as root, so chmod does not stop writes; a path through a regular file does (ENOTDIR)."""
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("keep me")
    result = cli(*train_args(idx_root, blocker / "runs"))
    assert_one_line_error(result, 1, f"cannot write to {blocker / 'runs' / 'run'} (Not a directory)",
                          "choose a writable --output-dir")
    assert blocker.read_text() == "keep me"


def test_read_only_output_dir(cli, idx_root: Path, tmpfs) -> None:
    """A read-only mount refuses writes even to root (EROFS)."""
    read_only = tmpfs("ro", "ro,size=1m")
    result = cli(*train_args(idx_root, read_only))
    assert_one_line_error(result, 1, f"cannot write to {read_only / 'run'} (Read-only file system)")


def test_run_dir_holding_another_run_is_not_clobbered(cli, idx_root: Path, run_copy: Path) -> None:
    before = snapshot(run_copy)
    result = cli(*train_args(idx_root, run_copy.parent, "done", "--epochs", "2"))
    assert_one_line_error(result, 1, f"{run_copy} already holds a run", "--resume auto", "--overwrite")
    assert snapshot(run_copy) == before


def test_overwrite_moves_the_old_run_aside(cli, idx_root: Path, run_copy: Path) -> None:
    before = snapshot(run_copy)
    result = cli(*train_args(idx_root, run_copy.parent, "done", "--seed", "3", "--overwrite"))
    assert result.code == 0, result.err
    moved = run_copy.parent / "done.old-1"
    assert f"{run_copy}: --overwrite; the previous run's files were moved to {moved}" in result.out
    assert snapshot(moved) == before  # every old file, checkpoints included, byte for byte
    assert_loadable(find_latest_checkpoint(moved / "checkpoints"))
    assert assert_loadable(find_latest_checkpoint(run_copy / "checkpoints"))["config"]["seed"] == 3


def test_second_process_on_the_same_run_dir_is_refused_and_the_first_goes_on(
    cli, idx_root: Path, tmp_path: Path
) -> None:
    output = tmp_path / "runs"
    first = subprocess.Popen(
        [sys.executable, "-m", "ignite_mnist", *train_args(idx_root, output, "shared", "--epochs", "10000")],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env=SUBPROCESS_ENV,
    )
    checkpoints = output / "shared" / "checkpoints"
    try:
        while find_latest_checkpoint(checkpoints) is None:  # the first run is training, its lock held
            assert first.poll() is None, first.communicate()
            time.sleep(0.05)
        for args in (train_args(idx_root, output, "shared"),
                     ("--output-dir", str(output), "--run-name", "shared", "--resume", "auto", *QUIET)):
            result = cli(*args)
            assert_one_line_error(result, 1, f"{output / 'shared'} is in use by another ignite-mnist process "
                                  f"(pid {first.pid})")
        refused_at = find_latest_checkpoint(checkpoints)
        while find_latest_checkpoint(checkpoints) == refused_at:  # the first run kept training...
            assert first.poll() is None, first.communicate()
            time.sleep(0.05)
    finally:
        first.send_signal(signal.SIGTERM)  # ...and still stops cleanly, with a resumable checkpoint
        _, err = first.communicate(timeout=120)
    assert first.returncode == 143, err
    assert "checkpoint saved to" in err and len(err.splitlines()) == 1
    assert_loadable(find_latest_checkpoint(checkpoints))


def test_full_disk_during_a_checkpoint_write(cli, idx_root: Path, tmp_path: Path, monkeypatch) -> None:
    """The third checkpoint write fails as on a full disk (stand-in where tmpfs cannot be mounted)."""
    real_save = torch.save
    calls = []

    def save_until_full(obj, f, *args, **kwargs):
        calls.append(f)
        if len(calls) == 3:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_save(obj, f, *args, **kwargs)

    monkeypatch.setattr(torch, "save", save_until_full)
    result = cli(*train_args(idx_root, tmp_path / "runs", "full", "--checkpoint-every", "4"))
    monkeypatch.undo()

    checkpoints = tmp_path / "runs" / "full" / "checkpoints"
    newest = checkpoints / "last_checkpoint_8.pt"
    assert_one_line_error(result, 1, f"cannot write a checkpoint to {checkpoints} (No space left on device)",
                          f"the newest intact one is {newest}", "--resume auto")
    assert sorted(p.name for p in checkpoints.iterdir()) == ["last_checkpoint_8.pt"]  # no partial file left
    assert assert_loadable(newest)["trainer"]["iteration"] == 8
    resumed = cli("--resume", "auto", "--output-dir", tmp_path / "runs", "--run-name", "full", *QUIET)
    assert resumed.code == 0, resumed.err
    assert assert_loadable(find_latest_checkpoint(checkpoints))["trainer"]["iteration"] == 16


def test_really_full_tmpfs_during_a_checkpoint_write(cli, idx_root: Path, tiny_run: Path, tmpfs) -> None:
    """A tmpfs with room for two checkpoints: the third file (the epoch's best) hits a real ENOSPC."""
    size = find_latest_checkpoint(tiny_run / "checkpoints").stat().st_size
    disk = tmpfs("small", f"size={int(size * 2.6) // 4096 * 4096}")
    result = cli(*train_args(idx_root, disk, "full", "--checkpoint-every", "4", "--keep-best", "1"))
    checkpoints = disk / "full" / "checkpoints"
    assert_one_line_error(result, 1, f"cannot write a checkpoint to {checkpoints} (No space left on device)",
                          f"the newest intact one is {checkpoints / 'last_checkpoint_12.pt'}")
    assert sorted(p.name for p in checkpoints.iterdir()) == ["last_checkpoint_12.pt", "last_checkpoint_8.pt"]
    assert assert_loadable(checkpoints / "last_checkpoint_12.pt")["trainer"]["iteration"] == 12
