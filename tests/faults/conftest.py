"""Fixtures of the fault tests: a finished tiny run to damage, one-line error checks, file snapshots."""

from __future__ import annotations

import hashlib
import os
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

from ignite_mnist.cli import main
from ignite_mnist.settings.config import setting_fields
from ignite_mnist.storage.run_dir import RunDir

_SETTINGS = set(setting_fields())
#: Quiet, fast runs: no progress output, and no W&B or plots where those settings exist.
QUIET = (
    ("--progress", "none")
    + (("--wandb-mode", "disabled") if "wandb_mode" in _SETTINGS else ())
    + (("--no-plots",) if "plots" in _SETTINGS else ())
)
#: The environment of the fault tests' subprocesses (see :func:`one_thread`).
SUBPROCESS_ENV = {**os.environ, "OMP_NUM_THREADS": "1"}
#: 1000 training images (200 held out) in batches of 64: 16 iterations per epoch.
TINY = ("--val-size", "200", "--batch-size", "64", "--epochs", "1")


@dataclass
class Result:
    """What one ``ignite-mnist`` invocation returned and printed."""

    code: int
    out: str
    err: str


def assert_one_line_error(result: Result, code: int, *fragments: str) -> str:
    """The run failed with ``code`` and exactly one stderr line (no traceback) holding ``fragments``."""
    assert result.code == code, (result.code, result.err)
    lines = result.err.splitlines()
    assert len(lines) == 1, result.err
    assert lines[0].startswith("ignite-mnist: error: "), lines[0]
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
    return lines[0]


@pytest.fixture(scope="package", autouse=True)
def one_thread() -> Iterator[None]:
    """One intra-op thread, as in the subprocesses (``OMP_NUM_THREADS=1``): the same arithmetic
    in both, and far less CPU on a shared machine where a second spinning thread only waits."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> Callable[..., Result]:
    """Run ``ignite-mnist ARGS`` in this process (the same ``main`` the console script calls).

    In-process saves the 3-5 s a Python start with torch costs; the subprocess
    tests (signals, locks, the kill loop) cover what only a real process shows.
    """

    def invoke(*args: str | Path) -> Result:
        capsys.readouterr()
        try:
            code = main([str(a) for a in args])
        except SystemExit as exit_:  # argparse ends a usage error with sys.exit(2)
            code = exit_.code
        captured = capsys.readouterr()
        return Result(code, captured.out, captured.err)

    return invoke


def snapshot(folder: Path) -> dict[str, str]:
    """``{relative path: sha256}`` of every file under ``folder`` but run-dir locks (``.lock`` only names a pid)."""
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*")) if p.is_file() and p.name != RunDir.LOCK
    }


def assert_loadable(path: Path) -> dict:
    """``path`` is a complete checkpoint that loads safely and holds a model."""
    checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    assert checkpoint["model"] and checkpoint["trainer"]["iteration"] > 0
    return checkpoint


@pytest.fixture(scope="session")
def tiny_run(idx_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished 1-epoch MLP run on the generated data (16 iterations); copy it before damaging it."""
    output = tmp_path_factory.mktemp("tiny-run")
    code = main(["--data-dir", str(idx_root), "--output-dir", str(output), "--run-name", "done", *TINY, *QUIET])
    assert code == 0
    return output / "done"


@pytest.fixture
def run_copy(tiny_run: Path, tmp_path: Path) -> Path:
    """A private copy of :func:`tiny_run` under ``tmp_path/runs/done``."""
    target = tmp_path / "runs" / "done"
    shutil.copytree(tiny_run, target)
    return target


