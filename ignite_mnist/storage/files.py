"""Files that are either complete or absent: the one place that writes "``.partial``, then rename".

A reader (a resumed run, ``evaluate``, a person) never sees half a file: the
content goes to ``<name>.partial`` beside the target, is flushed to the disk, and
replaces the target in one ``os.replace``. A failed write (disk full, read-only
folder) removes the ``.partial``, leaves the previous file as it was, and raises
:class:`~ignite_mnist.errors.WriteError` (one line). Files that grow
a line at a time use :func:`append_line`.

Example:
    >>> import tempfile
    >>> folder = Path(tempfile.mkdtemp())
    >>> write_json(folder / "summary.json", {"accuracy": 0.97})
    >>> (folder / "summary.json").read_text()
    '{\\n  "accuracy": 0.97\\n}\\n'
    >>> sorted(p.name for p in folder.iterdir())
    ['summary.json']
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from ignite_mnist.errors import WriteError

__all__ = ["PARTIAL_SUFFIX", "append_line", "partial_path", "replacing", "write_json", "write_text"]

PARTIAL_SUFFIX = ".partial"
#: Why a write fails, as opposed to a read of what is being written (a damaged source file).
WRITE_ERRNOS = frozenset({errno.ENOSPC, errno.EROFS, errno.EACCES, errno.EPERM, errno.EDQUOT, errno.EFBIG})


def partial_path(path: Path) -> Path:
    """Where the content of ``path`` is written before it replaces ``path``."""
    return path.with_name(path.name + PARTIAL_SUFFIX)


@contextlib.contextmanager
def replacing(path: str | Path, mode: str = "w") -> Iterator[IO[Any]]:
    """Open ``<path>.partial`` for writing; on a clean exit it replaces ``path``, on an error it is removed.

    Example:
        >>> import tempfile
        >>> with replacing(Path(tempfile.mkdtemp()) / "a.txt") as f:
        ...     _ = f.write("complete")
    """
    path = Path(path)
    partial = partial_path(path)
    try:
        with open(partial, mode, **({} if "b" in mode else {"encoding": "utf-8"})) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(partial, path)
    except BaseException as error:
        with contextlib.suppress(OSError):
            partial.unlink()
        if isinstance(error, OSError) and error.errno in WRITE_ERRNOS:
            raise WriteError(path, error) from None
        raise


def append_line(path: str | Path, line: str) -> None:
    """Append ``line`` and a newline to ``path`` and flush it (a reader skips a line a crash cut short).

    Raises:
        WriteError: the file cannot be written.
    """
    try:
        with open(path, "a", encoding="utf-8") as handle:
            handle.write(line + "\n")
    except OSError as error:
        raise WriteError(path, error) from None


def write_text(path: str | Path, text: str) -> None:
    """Replace ``path`` with ``text`` atomically."""
    with replacing(path) as handle:
        handle.write(text)


def write_json(path: str | Path, values: Any) -> None:
    """Replace ``path`` with ``values`` as indented JSON, atomically."""
    write_text(path, json.dumps(values, indent=2) + "\n")
