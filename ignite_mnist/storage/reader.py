"""The one reader of the files ignite-mnist did not write in this process: run directories, sweep folders, files it
is handed.

Every such file goes through here: a run's ``config.json``, ``metrics.jsonl``,
``summary.json`` and checkpoints; a sweep folder's ``sweep.yaml`` and ``sweep.json``;
``--config`` files, sweep files, exported models and their sidecars. Before a
parser sees a byte:

* **a regular file**: a pipe, a device (``/dev/zero``), a folder or a socket is
  refused, looked at before it is opened and again on the open descriptor (so a
  file swapped in between is caught); the open never follows a last link
  (``O_NOFOLLOW``, on the resolved path) and never waits (``O_NONBLOCK``: a pipe
  does not block it).
* **inside its folder** (``inside=``): a file found in a run directory or a sweep
  folder, its links followed, must lie inside that folder; a link out of it is
  refused without being opened. A file you name on the command line follows its
  links (you chose it).
* **within its limit** (:mod:`ignite_mnist.limits`): the size on the descriptor is
  checked first (a sparse 3 GB file costs nothing) and at most ``limit + 1`` bytes
  are ever read (a file that grows while it is read is caught too).

Anything else is one :class:`~ignite_mnist.errors.UnsafeFileError` line saying what
the file is and what to do; a missing file is ``FileNotFoundError`` as usual.
Writing is :mod:`ignite_mnist.storage.files`.

Example:
    >>> import os, tempfile
    >>> run = Path(tempfile.mkdtemp())
    >>> _ = (run / "config.json").write_text('{"epochs": 3}')
    >>> read_json(run / "config.json", 1024, inside=run)
    {'epochs': 3}
    >>> os.symlink("/dev/zero", run / "metrics.jsonl")
    >>> read_file(run / "metrics.jsonl", 1024, inside=run)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ignite_mnist.errors.UnsafeFileError: .../metrics.jsonl: refused: a link to /dev/zero, outside ...
    >>> read_file("/dev/zero", 1024)
    Traceback (most recent call last):
    ...
    ignite_mnist.errors.UnsafeFileError: /dev/zero: refused: a device, not a regular file; name the file itself
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from ignite_mnist.errors import UnsafeFileError

__all__ = ["check_file", "open_file", "read_file", "read_json", "read_lines", "size_text"]

#: What each kind of file that is not a regular one is called in a refusal.
_KINDS = ((stat.S_ISFIFO, "a pipe (FIFO)"), (stat.S_ISCHR, "a device"), (stat.S_ISBLK, "a device"),
          (stat.S_ISDIR, "a folder"), (stat.S_ISSOCK, "a socket"))
#: The advice of a refusal: a file a command found in a folder, and one it was given by name.
FOUND_ADVICE = "it was not written by ignite-mnist; remove it, or use a copy of the run made by ignite-mnist"
NAMED_ADVICE = "name the file itself"


def size_text(size: int) -> str:
    """A byte count as people read it.

    Example:
        >>> size_text(1 << 20), size_text(3 * 2**30), size_text(500)
        ('1 MiB', '3 GiB', '500 bytes')
    """
    for unit, shift in (("GiB", 30), ("MiB", 20), ("KiB", 10)):
        if size >= 1 << shift and size % (1 << shift) == 0:
            return f"{size >> shift} {unit}"
    return f"{size} bytes" if size < 1 << 20 else f"{size / (1 << 20):.1f} MiB"


def _check(path: Path, info: os.stat_result, limit: int, advice: str) -> int:
    """The size of a regular file of at most ``limit`` bytes, else a refusal."""
    for test, kind in _KINDS:
        if test(info.st_mode):
            raise UnsafeFileError(path, f"{kind}, not a regular file", advice)
    if info.st_size > limit:
        raise UnsafeFileError(path, f"{size_text(info.st_size)}, more than the {size_text(limit)} such a file may "
                                    "have", advice)
    return info.st_size


def _resolved(path: Path, inside: str | Path | None) -> str:
    """``path`` with every link followed; with ``inside``, it must be in that folder (links followed too)."""
    real = os.path.realpath(path)
    if inside is not None:
        root = os.path.realpath(inside)
        if os.path.commonpath([real, root]) != root:
            raise UnsafeFileError(path, f"a link to {real}, outside {inside}",
                                  "ignite-mnist reads only files inside the folder; remove the link")
    return real


def check_file(path: str | Path, limit: int, *, inside: str | Path | None = None) -> int:
    """The size of ``path``: a regular file of at most ``limit`` bytes (inside folder ``inside``, if given), for a
    library that opens it by its name (an exported model's runtime).

    Raises:
        UnsafeFileError: not a regular file, too big, or a link out of ``inside``.
        OSError: missing or not readable.
    """
    path = Path(path)
    advice = NAMED_ADVICE if inside is None else FOUND_ADVICE
    return _check(path, os.stat(_resolved(path, inside)), limit, advice)


def open_file(path: str | Path, limit: int, *, inside: str | Path | None = None) -> IO[bytes]:
    """``path`` opened for reading in binary, once it is known to be a regular file of at most ``limit`` bytes (inside
    folder ``inside``, if given). Read at most ``limit + 1`` bytes from it (or use :func:`read_file`).

    Raises:
        UnsafeFileError: not a regular file, too big, or a link out of ``inside``.
        OSError: missing or not readable.
    """
    path = Path(path)
    advice = NAMED_ADVICE if inside is None else FOUND_ADVICE
    real = _resolved(path, inside)
    _check(path, os.stat(real), limit, advice)  # before the open: a device is never opened
    descriptor = os.open(real, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        _check(path, os.fstat(descriptor), limit, advice)  # what was opened: swapped in between, it is caught here
        os.set_blocking(descriptor, True)
        return os.fdopen(descriptor, "rb")
    except BaseException:
        os.close(descriptor)
        raise


def read_file(path: str | Path, limit: int, *, inside: str | Path | None = None) -> bytes:
    """The bytes of a regular file of at most ``limit`` bytes (inside folder ``inside``, if given).

    Raises:
        UnsafeFileError: not a regular file, too big (also when it grew while read), or a link out of ``inside``.
        OSError: missing or not readable.
    """
    with open_file(path, limit, inside=inside) as handle:
        data = handle.read(limit + 1)
    if len(data) > limit:
        raise UnsafeFileError(path, f"it grew past the {size_text(limit)} such a file may have while it was read",
                              NAMED_ADVICE if inside is None else FOUND_ADVICE)
    return data


def read_json(path: str | Path, limit: int, *, inside: str | Path | None = None) -> Any:
    """The JSON value in a file :func:`read_file` accepts.

    Raises:
        UnsafeFileError: see :func:`read_file`.
        OSError: missing or not readable.
        ValueError: not UTF-8 JSON, or nested too deeply for Python's parser.
    """
    text = read_file(path, limit, inside=inside).decode("utf-8")
    try:
        return json.loads(text)
    except RecursionError:
        raise ValueError("nested too deeply") from None


def read_lines(path: str | Path, limit: int, line_limit: int, *, inside: str | Path | None = None
               ) -> Iterator[bytes | None]:
    """The lines of a file :func:`read_file` accepts, one at a time (without their newline); a line longer than
    ``line_limit`` bytes is skipped unread, as ``None``. At most ``limit`` bytes are read in all.

    Raises:
        UnsafeFileError: see :func:`read_file`.
        OSError: missing or not readable.
    """
    read = 0
    with open_file(path, limit, inside=inside) as handle:
        while line := handle.readline(line_limit + 1):
            read += len(line)
            too_long = len(line) > line_limit and not line.endswith(b"\n")
            while too_long and line and not line.endswith(b"\n") and read <= limit:  # the rest of the long line
                line = handle.readline(line_limit + 1)
                read += len(line)
            if read > limit:
                raise UnsafeFileError(path, f"it grew past the {size_text(limit)} such a file may have while it "
                                            "was read", NAMED_ADVICE if inside is None else FOUND_ADVICE)
            yield None if too_long else line.rstrip(b"\r\n")
