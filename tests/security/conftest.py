"""Fixtures of the fuzz tests: a real tiny run to mutate, a sentinel folder, in-process and subprocess runs, and
the count of cases each fuzz test covered (:mod:`tests.security.fuzz_report` prints them in pytest's summary).

Every case must end in success or in one line (exit 1 or 2), never a traceback or a signal, and leave
everything outside its run directory as it was (the sentinel folder is compared file by file).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

from ignite_mnist.cli import main
from tests.security.fuzz_report import count_cases

__all__ = ["QUIET", "TINY", "Outcome", "copy_run", "count_cases", "last_checkpoint", "load", "run_subprocess",
           "snapshot"]

QUIET = ("--progress", "none", "--wandb-mode", "disabled", "--no-plots", "--threads", "1")
#: 1000 training images (200 held out) in batches of 64: 16 iterations per epoch.
TINY = ("--val-size", "200", "--batch-size", "64")


@dataclass
class Outcome:
    """What one ``ignite-mnist`` invocation returned and printed."""

    code: int
    out: str
    err: str

    def check(self, case: str) -> None:
        """Success, or one line (exit 1 or 2); never a traceback."""
        assert "Traceback" not in self.err, (case, self.err)
        if self.code == 0:
            return
        assert self.code in (1, 2), (case, self.code, self.err)
        lines = [line for line in self.err.splitlines() if line.strip()]
        assert len(lines) == 1 and lines[0].startswith("ignite-mnist: error: "), (case, self.err)


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> Callable[..., Outcome]:
    """``ignite-mnist ARGS`` in this process, through the ``main`` the console script calls."""

    def invoke(*args: str | Path) -> Outcome:
        capsys.readouterr()
        try:
            code = main([str(a) for a in args])
        except SystemExit as exit_:  # argparse ends a usage error with sys.exit(2)
            code = int(exit_.code or 0)
        captured = capsys.readouterr()
        return Outcome(code, captured.out, captured.err)

    return invoke


def run_subprocess(*args: str | Path, cwd: Path | None = None, env: dict[str, str] | None = None) -> Outcome:
    """``python -m ignite_mnist ARGS`` in a real process: a signal (an abort) shows as a negative code."""
    full_env = {**os.environ, "OMP_NUM_THREADS": "1", **(env or {})}
    result = subprocess.run([sys.executable, "-m", "ignite_mnist", *map(str, args)], cwd=cwd, env=full_env,
                            capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode >= 0, f"killed by signal {-result.returncode}: {result.stderr[-2000:]}"
    return Outcome(result.returncode, result.stdout, result.stderr)


def snapshot(folder: Path, skip: Callable[[Path], bool] = lambda path: False) -> dict[str, str]:
    """``{relative path: sha256 or 'dir' or 'link'}`` of everything under ``folder`` (but what ``skip`` says)."""
    found = {}
    for path in sorted(folder.rglob("*")):
        if skip(path):
            continue
        relative = str(path.relative_to(folder))
        if path.is_symlink():
            found[relative] = "link"
        elif path.is_dir():
            found[relative] = "dir"
        elif path.is_file():
            found[relative] = hashlib.sha256(path.read_bytes()).hexdigest()
    return found


@pytest.fixture
def sentinel(tmp_path: Path) -> Iterator[Path]:
    """Files a crafted input might reach for: ``VICTIM.pt`` and friends at the top of ``tmp_path`` (where
    ``../../../VICTIM.pt`` from a run's ``checkpoints/`` lands) and in ``tmp_path/sentinel/``."""
    folder = tmp_path / "sentinel"
    folder.mkdir()
    for place in (tmp_path, folder):
        for name in ("VICTIM.pt", "VICTIM2.pt", "last_checkpoint_1.pt", "notes.txt"):
            (place / name).write_bytes(name.encode() * 10)
    return folder


@pytest.fixture(scope="session")
def trained_run(idx_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real 1-epoch MLP run on the generated IDX data (16 iterations), checkpointed every 8 iterations."""
    output = tmp_path_factory.mktemp("fuzz-run")
    code = main(["--data-dir", str(idx_root), "--output-dir", str(output), "--run-name", "done", "--epochs", "1",
                 "--checkpoint-every", "8", *TINY, *QUIET])
    assert code == 0
    return output / "done"


def copy_run(run: Path, target: Path) -> Path:
    shutil.copytree(run, target, ignore=shutil.ignore_patterns(".lock"))
    return target


def last_checkpoint(run: Path) -> Path:
    return max((run / "checkpoints").glob("last_checkpoint_*.pt"), key=lambda p: int(p.stem.split("_")[-1]))


def load(path: Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=True)
