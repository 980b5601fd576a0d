"""The run directory: the one owner of its layout, its lock, and where its checkpoints are.

```
<output-dir>/<run-name>/
    config.json        every setting (TrainConfig.to_dict)
    metrics.jsonl      one row per epoch and per mid-epoch validation
    summary.json       written once the run has finished; paths in it are relative to this folder
    checkpoints/       last_checkpoint_<iteration>.pt, best_checkpoint_<iteration>_<score>.pt
    plots/             curves.png, confusion_matrix.png, misclassified.png
    .lock              held by the process training in it
    ...                each tracker's own files: wandb/, TensorBoard's events.out.tfevents.*, mlflow.db, mlartifacts/
```

Each tracker declares what it keeps here (``FILES`` of its settings, e.g.
:class:`~ignite_mnist.tracking.wandb_settings.WandbSettings`), so this module names none.

Every file of the folder is read through :mod:`ignite_mnist.storage.reader` (inside the
folder, within its limit) and written through :mod:`ignite_mnist.storage.files`.

Training, ``--resume``, ``evaluate``, ``predict`` and ``export`` all find
checkpoints through :class:`RunDir`, so a run can be moved or copied: every path
it stores is relative to the folder. Two guards neither Ignite nor torch provide:

* :meth:`RunDir.lock`: an exclusive ``fcntl.flock`` on ``.lock`` for the whole run;
  a second process on the same folder is refused at once. The kernel drops the
  lock when the holder exits, however it exits, so there is no stale lock. A
  ``.lock`` planted as a link or a pipe is replaced, never followed
  (:func:`~ignite_mnist.storage.files.locked`).
* :meth:`RunDir.check_entries`: before a run writes, its own names (and its trackers')
  must not be links, pipes or devices.
* :meth:`RunDir.set_aside`: ``--overwrite`` moves the previous run's files into a
  sibling ``<name>.old-<N>`` instead of deleting them.

Example:
    >>> run_dir = RunDir("runs/demo")
    >>> run_dir.checkpoint_dir
    PosixPath('runs/demo/checkpoints')
    >>> run_dir.relative(Path("runs/demo/checkpoints/best_checkpoint_9_accuracy=0.9.pt"))
    'checkpoints/best_checkpoint_9_accuracy=0.9.pt'
    >>> RunDir.of_checkpoint(Path("runs/demo/checkpoints/last_checkpoint_9.pt")).path
    PosixPath('runs/demo')
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ignite_mnist.errors import CheckpointError, RunDirError
from ignite_mnist.limits import MAX_METRICS_LINE_BYTES, MAX_METRICS_LOG_BYTES, MAX_SETTINGS_FILE_BYTES
from ignite_mnist.storage.checkpoint_files import (
    find_best_checkpoint,
    find_latest_checkpoint,
    is_checkpoint_name,
    saved_iteration,
)
from ignite_mnist.storage.files import (
    FILE,
    FOLDER,
    LockBusy,
    check_entries,
    locked,
    move,
    replacing,
    write_json,
    write_text,
)
from ignite_mnist.storage.reader import read_file, read_json, read_lines

__all__ = ["RunDir", "model_checkpoint", "read_metrics_log", "truncate_metrics_log", "unwritable"]


def unwritable(path: str | Path, error: OSError) -> RunDirError:
    """The one-line error for a run directory that cannot be created or written.

    Example:
        >>> str(unwritable("runs/a", PermissionError(13, "Permission denied")))
        'cannot write to runs/a (Permission denied); choose a writable --output-dir'
    """
    return RunDirError(f"cannot write to {path} ({error.strerror or error}); choose a writable --output-dir")


class RunDir:
    """One run's folder: its file names, its checkpoints, its lock.

    Args:
        path: the folder (it need not exist yet).
    """

    CONFIG = "config.json"
    METRICS = "metrics.jsonl"
    SUMMARY = "summary.json"
    CHECKPOINTS = "checkpoints"
    PLOTS = "plots"
    LOCK = ".lock"

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"RunDir({str(self.path)!r})"

    def __str__(self) -> str:
        return str(self.path)

    @classmethod
    def of_checkpoint(cls, checkpoint: str | Path) -> RunDir | None:
        """The run a checkpoint file belongs to (it sits in ``<run>/checkpoints/``), or None."""
        checkpoint = Path(checkpoint)
        return cls(checkpoint.parent.parent) if checkpoint.parent.name == cls.CHECKPOINTS else None

    @property
    def config_file(self) -> Path:
        return self.path / self.CONFIG

    @property
    def metrics_file(self) -> Path:
        return self.path / self.METRICS

    @property
    def summary_file(self) -> Path:
        return self.path / self.SUMMARY

    @property
    def checkpoint_dir(self) -> Path:
        return self.path / self.CHECKPOINTS

    @property
    def plots_dir(self) -> Path:
        return self.path / self.PLOTS

    def holds_run(self) -> bool:
        """Whether a run was started here (its ``config.json`` exists)."""
        return self.config_file.is_file()

    def relative(self, path: str | Path) -> str:
        """``path`` as this run stores it: relative to the folder when inside it, else absolute."""
        path = Path(path)
        try:
            return str(path.resolve().relative_to(self.path.resolve()))
        except ValueError:
            return str(path.resolve())

    def resolve(self, stored: str | Path) -> Path:
        """A path this run stored, back to a usable one (also for runs written before paths were relative)."""
        stored = Path(stored)
        if stored.is_absolute():
            return stored
        inside = self.path / stored
        if inside.exists() or len(stored.parts) <= 2:
            return inside
        return self.path / Path(*stored.parts[-2:])  # "<old run dir>/checkpoints/x.pt" from an older summary

    def read_summary(self) -> dict[str, Any] | None:
        """``summary.json`` as a dict, or None when there is none (or it is not valid JSON).

        Raises:
            UnsafeFileError: it is a link out of the run, a pipe, a device, or over 1 MiB.
        """
        try:
            values = read_json(self.summary_file, MAX_SETTINGS_FILE_BYTES, inside=self.path)
        except (OSError, ValueError):  # missing, damaged
            return None
        return values if isinstance(values, dict) else None

    def read_config(self) -> dict[str, Any]:
        """``config.json`` as a dict.

        Raises:
            RunDirError: missing, not a JSON object, or damaged.
            UnsafeFileError: a link out of the run, a pipe, a device, or over 1 MiB.
        """
        try:
            values = read_json(self.config_file, MAX_SETTINGS_FILE_BYTES, inside=self.path)
        except (OSError, ValueError) as error:
            raise RunDirError(f"{self.config_file}: cannot be read ({error}); it is damaged or was not written "
                              "by ignite-mnist") from None
        if not isinstance(values, dict):
            raise RunDirError(f"{self.config_file}: not the settings of a run (a JSON object); it is damaged or "
                              "was not written by ignite-mnist")
        return values

    def read_metrics(self) -> list[dict[str, Any]]:
        """The rows of ``metrics.jsonl`` (:func:`read_metrics_log`); none when there is no such file.

        Raises:
            UnsafeFileError: it is a link out of the run, a pipe, a device, or over 16 MiB.
        """
        return read_metrics_log(self.metrics_file) if os.path.lexists(self.metrics_file) else []

    def check_entries(self, others: Mapping[str, str]) -> None:
        """Refuse a run whose own names (and ``others``: its trackers' names or patterns, each ``FILE``,
        ``FOLDER`` or ``ANY``) hold a link, a pipe, a device, or a file where a folder goes (or the reverse),
        before anything is written there.

        Raises:
            UnsafeFileError: one line naming the entry.
        """
        check_entries(self.path, {self.CONFIG: FILE, self.METRICS: FILE, self.SUMMARY: FILE,
                                  self.CHECKPOINTS: FOLDER, self.PLOTS: FOLDER} | dict(others))

    def write_summary(self, values: dict[str, Any]) -> None:
        write_json(self.summary_file, values)

    def write_config(self, values: dict[str, Any]) -> None:
        write_json(self.config_file, values)

    def latest_checkpoint(self) -> Path | None:
        """The newest "last" checkpoint (what ``--resume auto`` continues from), or None."""
        return find_latest_checkpoint(self.checkpoint_dir)

    def best_checkpoint(self) -> Path | None:
        """The best checkpoint: the one ``summary.json`` names (when it is a checkpoint in this run's
        ``checkpoints/``), else the best-scoring file, else None."""
        stored = (self.read_summary() or {}).get("best_checkpoint")
        with contextlib.suppress(OSError, ValueError):  # a name too long, a NUL: a damaged summary
            path = self.resolve(stored) if isinstance(stored, str) else None
            if path is not None and is_checkpoint_name(path.name) and path.is_file() and (  # never outside the run
                    os.path.realpath(path.parent) == os.path.realpath(self.checkpoint_dir)):
                return path
        return find_best_checkpoint(self.checkpoint_dir)

    @contextmanager
    def lock(self) -> Iterator[Path]:
        """Hold an exclusive lock on the folder (which must exist) while the ``with`` block runs.

        Raises:
            RunDirError: another process holds the lock (the message names its pid), or the folder is not writable.
            UnsafeFileError: ``.lock`` is a folder.
        """
        path = self.path / self.LOCK
        with contextlib.ExitStack() as held:
            try:
                held.enter_context(locked(path, wait=False, holder=f"{os.getpid()}\n"))
            except LockBusy as busy:
                raise RunDirError(
                    f"{self.path} is in use by another ignite-mnist process (pid {busy.holder or 'unknown'}); wait "
                    "for it to finish or choose another --run-name"
                ) from None
            except OSError as error:
                raise unwritable(self.path, error) from None
            yield path

    def holds_checkpoints(self) -> bool:
        """Whether any checkpoint ("last" or "best") was saved here."""
        folder = self.checkpoint_dir
        return folder.is_dir() and any(saved_iteration(p) is not None for p in folder.iterdir())

    def newer_checkpoints(self, iteration: int) -> list[Path]:
        """The checkpoints saved after trainer ``iteration``."""
        folder = self.checkpoint_dir
        found = [(saved_iteration(p), p) for p in folder.iterdir()] if folder.is_dir() else []
        return sorted(p for i, p in found if i is not None and i > iteration)

    def set_aside(self, entries: list[Path] | None = None, copies: list[Path] | None = None) -> Path:
        """Move ``entries`` (default: everything but the lock) into a new sibling ``<name>.old-<N>``, keeping
        their places in the folder, and copy ``copies`` (the metrics log) there; return that folder. Nothing is
        deleted; a link is moved as the link, never followed."""
        number = 1
        while os.path.lexists(self.path.parent / f"{self.path.name}.old-{number}"):
            number += 1
        target = self.path.parent / f"{self.path.name}.old-{number}"
        target.mkdir()
        for entry in self.path.iterdir() if entries is None else entries:
            if entry.name != self.LOCK and os.path.lexists(entry):
                move(entry, target / entry.relative_to(self.path))
        for entry in copies or []:
            with contextlib.suppress(FileNotFoundError):
                data = read_file(entry, MAX_METRICS_LOG_BYTES, inside=self.path)
                with replacing(target / entry.relative_to(self.path), "wb") as handle:
                    handle.write(data)
        return target


def read_metrics_log(path: str | Path) -> list[dict[str, Any]]:
    """The rows of a ``metrics.jsonl`` file; lines that are not complete rows (a torn last line) are skipped.

    Example:
        >>> import tempfile
        >>> path = Path(tempfile.mkdtemp()) / "metrics.jsonl"
        >>> _ = path.write_text('{"epoch": 1, "iteration": 32}\\n{"epoch": 2, "itera')
        >>> read_metrics_log(path)
        [{'epoch': 1, 'iteration': 32}]
    """
    return _parse_metrics_log(path)[0]


def _parse_metrics_log(path: str | Path) -> tuple[list[dict[str, Any]], int]:
    """The complete rows, and how many non-empty lines were not rows (a line over 64 KiB is not one).

    The log is read through :func:`~ignite_mnist.storage.reader.read_lines`: a regular file inside its
    folder, at most 16 MiB (:data:`~ignite_mnist.limits.MAX_METRICS_LOG_BYTES`).
    """
    rows, unreadable = [], 0
    for line in read_lines(path, MAX_METRICS_LOG_BYTES, MAX_METRICS_LINE_BYTES, inside=Path(path).parent):
        try:
            row = json.loads(line.decode("utf-8", errors="replace")) if line is not None else None
        except (ValueError, RecursionError):
            row = None
        if isinstance(row, dict) and isinstance(row.get("iteration"), int):
            rows.append(row)
        else:
            unreadable += line is None or bool(line.strip())
    return rows, unreadable


def truncate_metrics_log(path: str | Path, up_to_iteration: int) -> int:
    """Keep the rows written up to ``up_to_iteration`` (a resumed run writes the later ones again).

    Returns:
        How many lines that were not complete rows (a write cut short) were dropped.
    """
    path = Path(path)
    if not os.path.lexists(path):
        return 0
    rows, unreadable = _parse_metrics_log(path)
    kept = [row for row in rows if row["iteration"] <= up_to_iteration]
    write_text(path, "".join(json.dumps(row) + "\n" for row in kept))
    return unreadable


def model_checkpoint(path: str | Path) -> Path:
    """The checkpoint a model is read from: a file as given; for a run directory its best, else newest.

    Raises:
        CheckpointError: a directory without any checkpoint.
    """
    path = Path(path)
    if not path.is_dir():
        return path
    run_dir = RunDir(path)
    found = run_dir.best_checkpoint() or run_dir.latest_checkpoint()
    if found is None:
        raise CheckpointError(f"{path}: a directory without checkpoints; pass a .pt file or a run directory")
    return found
