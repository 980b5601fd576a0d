"""Run directories that cannot be shared or clobbered by accident.

Two guards that neither Ignite nor torch provide:

* :func:`lock_run_dir`: an exclusive ``fcntl.flock`` on ``<run_dir>/.lock``, held
  for the whole run. A second process started on the same run directory (a
  second ``--resume auto``, the same ``--run-name`` twice) is refused at once
  instead of interleaving checkpoints with the first. The kernel drops the lock
  when the holder exits, however it exits (even on SIGKILL), so there is no stale
  lock to clean up; the ``.lock`` file itself stays (it only names the last holder).
* :func:`set_aside`: ``--overwrite`` moves the previous run's files into a
  sibling folder instead of deleting them, so no checkpoint is ever lost.

Example:
    >>> with lock_run_dir(Path("runs/demo")):  # doctest: +SKIP
    ...     train()
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ignite_mnist.errors import RunDirError

__all__ = ["LOCK_NAME", "lock_run_dir", "set_aside", "unwritable"]

LOCK_NAME = ".lock"


def unwritable(run_dir: str | Path, error: OSError) -> RunDirError:
    """The one-line error for a run directory that cannot be created or written.

    Example:
        >>> str(unwritable("runs/a", PermissionError(13, "Permission denied")))
        'cannot write to runs/a (Permission denied); choose a writable --output-dir'
    """
    return RunDirError(f"cannot write to {run_dir} ({error.strerror or error}); choose a writable --output-dir")


@contextmanager
def lock_run_dir(run_dir: str | Path) -> Iterator[Path]:
    """Hold an exclusive lock on ``run_dir`` (which must exist) while the ``with`` block runs.

    Raises:
        RunDirError: another process holds the lock; the message names its pid.

    Example:
        >>> with lock_run_dir(tmp_path) as lock_file:  # doctest: +SKIP
        ...     lock_file.name
        '.lock'
    """
    path = Path(run_dir) / LOCK_NAME
    try:
        handle = open(path, "a+", encoding="utf-8")
    except OSError as error:
        raise unwritable(run_dir, error) from None
    with handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "unknown"
            raise RunDirError(
                f"{run_dir} is in use by another ignite-mnist process (pid {holder}); wait for it to finish "
                "or choose another --run-name"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        try:
            yield path
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def set_aside(run_dir: str | Path) -> Path:
    """Move everything in ``run_dir`` but its lock into a new sibling ``<name>.old-<N>``; return that folder.

    Example:
        >>> set_aside(Path("runs/demo"))  # doctest: +SKIP
        PosixPath('runs/demo.old-1')
    """
    run_dir = Path(run_dir)
    number = 1
    while (run_dir.parent / f"{run_dir.name}.old-{number}").exists():
        number += 1
    target = run_dir.parent / f"{run_dir.name}.old-{number}"
    target.mkdir()
    for entry in run_dir.iterdir():
        if entry.name != LOCK_NAME:
            entry.rename(target / entry.name)
    return target
