"""Files that are either complete or absent: the one place that writes "``.partial``, then rename".

A reader (a resumed run, ``evaluate``, a person) never sees half a file: the
content goes to ``<name>.partial`` beside the target, is flushed to the disk, and
replaces the target in one ``os.replace``. A failed write (disk full, read-only
folder) removes the ``.partial`` and leaves the previous file as it was.

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
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

__all__ = ["PARTIAL_SUFFIX", "partial_path", "replacing", "write_json", "write_text"]

PARTIAL_SUFFIX = ".partial"


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
    except BaseException:
        with contextlib.suppress(OSError):
            partial.unlink()
        raise


def write_text(path: str | Path, text: str) -> None:
    """Replace ``path`` with ``text`` atomically."""
    with replacing(path) as handle:
        handle.write(text)


def write_json(path: str | Path, values: Any) -> None:
    """Replace ``path`` with ``values`` as indented JSON, atomically."""
    write_text(path, json.dumps(values, indent=2) + "\n")
