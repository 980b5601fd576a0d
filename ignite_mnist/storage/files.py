"""The one writer of what ignite-mnist keeps in a run directory (and a sweep folder): files that are complete or
absent, appended rows, locks, its own folders, and the check of what is already there.

* **Complete or absent** (:func:`replacing`, :func:`write_json`, :func:`replacing_path`): the content
  goes to ``<name>.partial`` beside the target, is flushed to the disk, and replaces the
  target in one ``os.replace``. A reader (a resumed run, ``evaluate``, a person) never
  sees half a file. A failed write (disk full, read-only folder) removes the ``.partial``,
  leaves the previous file as it was, and raises :class:`~ignite_mnist.errors.WriteError` (one line).
* **No write through a planted link**: ``os.replace`` replaces a link (or a pipe) at the
  target's name, never what it points to; the ``.partial`` is created new
  (``O_CREAT | O_EXCL | O_NOFOLLOW``) after whatever had its name is removed (a leftover,
  or a planted link: the run's own name). Rows (:func:`append_line`) are appended with
  ``O_NOFOLLOW`` to a regular file only. A lock (:func:`locked`) planted as a link or a
  pipe is replaced by a plain file: it holds only a process id.
* **Its own folders and names** (:func:`own_folder`, :func:`check_entries`): a folder the run
  writes into (``checkpoints/``, ``plots/``) is a real folder inside the run, not a link;
  the names the run and its trackers will write (``metrics.jsonl``, ``wandb/``,
  ``mlflow.db`` ...) are checked before anything is handed to them: a link, a pipe or a
  device there is refused with one :class:`~ignite_mnist.errors.UnsafeFileError` line.

Reading is :mod:`ignite_mnist.storage.reader`.

Example:
    >>> import tempfile
    >>> folder = Path(tempfile.mkdtemp())
    >>> write_json(folder / "summary.json", {"accuracy": 0.97})
    >>> (folder / "summary.json").read_text()
    '{\\n  "accuracy": 0.97\\n}\\n'
    >>> sorted(p.name for p in folder.iterdir())
    ['summary.json']
    >>> os.symlink("/dev/null", folder / "metrics.jsonl")
    >>> append_line(folder / "metrics.jsonl", "{}")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ignite_mnist.errors.UnsafeFileError: .../metrics.jsonl: refused: a link (to /dev/null), not a regular file; ...
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import fnmatch
import json
import os
import stat
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import IO, Any

from ignite_mnist.errors import UnsafeFileError, WriteError

__all__ = [
    "ANY",
    "FILE",
    "FOLDER",
    "PARTIAL_SUFFIX",
    "LockBusy",
    "append_line",
    "check_entries",
    "lock_held",
    "locked",
    "move",
    "own_folder",
    "partial_path",
    "replacing",
    "replacing_path",
    "write_json",
    "write_text",
]

PARTIAL_SUFFIX = ".partial"
#: Why a write fails, as opposed to a read of what is being written (a damaged source file).
WRITE_ERRNOS = frozenset({errno.ENOSPC, errno.EROFS, errno.EACCES, errno.EPERM, errno.EDQUOT, errno.EFBIG})
#: What an entry of :func:`check_entries` may be: a regular file, a real folder, or either.
FILE, FOLDER, ANY = "file", "folder", "file or folder"
#: Attempts to open a lock whose name a planted link or pipe held (each is replaced, once, by a plain file).
LOCK_ATTEMPTS = 3
_OWN_ADVICE = "a run's own files and folders are never links, pipes or devices; remove it, or choose another folder"


def partial_path(path: Path) -> Path:
    """Where the content of ``path`` is written before it replaces ``path``."""
    return path.with_name(path.name + PARTIAL_SUFFIX)


def _what(path: Path, info: os.stat_result) -> str:
    """What ``path`` is, when it is not what it should be (its ``lstat``)."""
    if stat.S_ISLNK(info.st_mode):
        return f"a link (to {os.readlink(path)})"
    kinds = ((stat.S_ISFIFO, "a pipe (FIFO)"), (stat.S_ISCHR, "a device"), (stat.S_ISBLK, "a device"),
             (stat.S_ISSOCK, "a socket"), (stat.S_ISDIR, "a folder"))
    return next((kind for test, kind in kinds if test(info.st_mode)), "a regular file")


def _clear(path: Path) -> None:
    """Remove what has the name ``path`` (a leftover ``.partial``, a planted link or pipe: a name of ours); a folder
    there is refused."""
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return
    if stat.S_ISDIR(info.st_mode):
        raise UnsafeFileError(path, "a folder where ignite-mnist writes a file", _OWN_ADVICE)
    path.unlink(missing_ok=True)


@contextlib.contextmanager
def replacing_path(path: str | Path) -> Iterator[Path]:
    """A new ``<path>.partial`` for a writer that takes a file name (torch, ONNX); on a clean exit it replaces
    ``path`` (a link there is replaced, never followed), on an error it is removed.

    Raises:
        UnsafeFileError: ``path`` (or its ``.partial``) is a folder.
        WriteError: the folder cannot be written (disk full, read-only, no permission).
    """
    path = Path(path)
    partial = partial_path(path)
    with contextlib.suppress(FileNotFoundError):
        if stat.S_ISDIR(os.lstat(path).st_mode):
            raise UnsafeFileError(path, "a folder where ignite-mnist writes a file", _OWN_ADVICE)
    try:
        _clear(partial)
        yield partial
        os.replace(partial, path)
    except BaseException as error:
        with contextlib.suppress(OSError):
            if not stat.S_ISDIR(os.lstat(partial).st_mode):
                partial.unlink()
        if isinstance(error, OSError) and error.errno in WRITE_ERRNOS:
            raise WriteError(path, error) from None
        raise


@contextlib.contextmanager
def replacing(path: str | Path, mode: str = "w") -> Iterator[IO[Any]]:
    """Open a new ``<path>.partial`` for writing; on a clean exit it replaces ``path``, on an error it is removed.

    Example:
        >>> import tempfile
        >>> with replacing(Path(tempfile.mkdtemp()) / "a.txt") as f:
        ...     _ = f.write("complete")
    """
    with replacing_path(path) as partial:
        descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o666)
        with open(descriptor, mode, encoding=None if "b" in mode else "utf-8") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())


def append_line(path: str | Path, line: str) -> None:
    """Append ``line`` and a newline to ``path`` (a regular file, created if missing; never through a link) and
    flush it (a reader skips a line a crash cut short).

    Raises:
        UnsafeFileError: ``path`` is a link, a pipe, a device or a folder.
        WriteError: the file cannot be written.
    """
    path = Path(path)
    flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
    try:
        descriptor = os.open(path, flags, 0o666)
    except OSError as error:
        if error.errno in (errno.ELOOP, errno.ENXIO, errno.EISDIR):  # a link; a pipe nobody reads; a folder
            raise UnsafeFileError(path, f"{_what(path, os.lstat(path))}, not a regular file", _OWN_ADVICE) from None
        raise WriteError(path, error) from None
    try:
        if not stat.S_ISREG(os.fstat(descriptor).st_mode):
            raise UnsafeFileError(path, f"{_what(path, os.fstat(descriptor))}, not a regular file", _OWN_ADVICE)
        data = (line + "\n").encode("utf-8")
        while data:  # unbuffered: what a failed write kept is never written again when the file closes
            data = data[os.write(descriptor, data):]
    except OSError as error:
        raise WriteError(path, error) from None
    finally:
        os.close(descriptor)


def write_text(path: str | Path, text: str) -> None:
    """Replace ``path`` with ``text`` atomically."""
    with replacing(path) as handle:
        handle.write(text)


def write_json(path: str | Path, values: Any) -> None:
    """Replace ``path`` with ``values`` as indented JSON, atomically."""
    write_text(path, json.dumps(values, indent=2) + "\n")


class LockBusy(Exception):
    """Another process holds the lock; ``holder`` is what it wrote there (its process id), or ``""``."""

    def __init__(self, holder: str) -> None:
        super().__init__(holder)
        self.holder = holder


def _open_lock(path: Path) -> int:
    """A descriptor of the lock file ``path``, a regular file; a link or a pipe there is replaced by one."""
    for _ in range(LOCK_ATTEMPTS):
        try:
            descriptor = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, 0o666)
        except OSError as error:
            if error.errno == errno.EISDIR:
                raise UnsafeFileError(path, "a folder where ignite-mnist keeps a lock file", _OWN_ADVICE) from None
            if error.errno != errno.ELOOP:
                raise
            path.unlink(missing_ok=True)  # a link: only the link goes
            continue
        if stat.S_ISREG(os.fstat(descriptor).st_mode):
            os.set_blocking(descriptor, True)
            return descriptor
        os.close(descriptor)
        _clear(path)  # a pipe or a socket (a folder is refused)
    raise UnsafeFileError(path, "it keeps being replaced by a link or a pipe", _OWN_ADVICE)


def _lock_of_the_name(path: Path, wait: bool) -> IO[str]:
    """The lock file ``path`` opened and locked: the file that has that name once it is locked (another process
    that replaced a planted link at the same moment made a new one: that one is locked instead)."""
    for _ in range(LOCK_ATTEMPTS):
        handle = open(_open_lock(path), "r+", encoding="utf-8", errors="replace")  # noqa: SIM115 - returned open
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            with handle:
                raise LockBusy(handle.read(100).strip()) from None
        with contextlib.suppress(FileNotFoundError):
            if os.lstat(path).st_ino == os.fstat(handle.fileno()).st_ino:
                return handle
        handle.close()
    raise UnsafeFileError(path, "it keeps being replaced while it is locked", _OWN_ADVICE)


@contextlib.contextmanager
def locked(path: str | Path, *, wait: bool = True, holder: str | None = None) -> Iterator[IO[str]]:
    """Hold an exclusive ``flock`` on the lock file ``path`` while the ``with`` block runs; write ``holder`` into it.

    The file is a plain file of its own (a link or a pipe planted there is replaced, never
    followed); the kernel drops the lock when the holder exits, however it exits.

    Raises:
        LockBusy: ``wait`` is False and another process holds it.
        UnsafeFileError: ``path`` is a folder.
        OSError: the folder cannot be written.
    """
    with _lock_of_the_name(Path(path), wait) as handle:
        if holder is not None:
            handle.truncate()
            handle.write(holder)
            handle.flush()
        try:
            yield handle
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def lock_held(path: str | Path) -> bool:
    """Whether a process holds the lock file ``path`` now (probed, never waited for; a link or anything but a
    regular file there is no lock anybody holds).

    Example:
        >>> import tempfile
        >>> path = Path(tempfile.mkdtemp()) / "a.lock"
        >>> with locked(path):
        ...     lock_held(path)
        True
        >>> lock_held(path)
        False
    """
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        if not stat.S_ISREG(os.fstat(descriptor).st_mode):
            return False
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(descriptor)
    return False


def move(entry: str | Path, target: str | Path) -> None:
    """Move ``entry`` (a file, a folder, or a link as the link: ``rename`` never follows it) to ``target``, making
    ``target``'s folders; nothing is copied or deleted.

    Raises:
        OSError: ``target`` is on another file system, or exists.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    if os.path.lexists(target):
        raise FileExistsError(errno.EEXIST, "exists already", str(target))
    os.rename(entry, target)


def own_folder(path: str | Path, inside: str | Path) -> Path:
    """The folder ``path`` (created if missing), a real folder inside ``inside`` where ignite-mnist writes.

    Raises:
        UnsafeFileError: a link (even to a folder), or not a folder.
        WriteError: it cannot be created.
    """
    path = Path(path)
    try:
        path.mkdir(exist_ok=True)
    except FileExistsError:
        pass  # not a folder: said below
    except OSError as error:
        raise WriteError(path, error) from None
    info = os.lstat(path)
    if not stat.S_ISDIR(info.st_mode) or os.path.realpath(path) != os.path.join(os.path.realpath(inside),
                                                                                 path.relative_to(inside)):
        raise UnsafeFileError(path, f"{_what(path, info)}, not a folder inside {inside}", _OWN_ADVICE)
    return path


def check_entries(folder: str | Path, entries: Mapping[str, str]) -> None:
    """Refuse what ``folder`` holds under the names (or ``fnmatch`` patterns) of ``entries`` that is not of its kind
    (``FILE``, ``FOLDER`` or ``ANY``): a link, a pipe, a device, a folder for a file...

    Raises:
        UnsafeFileError: the first entry that is not what it should be; nothing has been written.
    """
    folder = Path(folder)
    patterns = {name: kind for name, kind in entries.items() if any(c in name for c in "*?[")}
    names = [name for name in entries if name not in patterns]
    if patterns:
        with contextlib.suppress(OSError):
            names += sorted(n for n in os.listdir(folder) if any(fnmatch.fnmatch(n, p) for p in patterns))
    for name in names:
        kind = entries.get(name) or next(k for p, k in patterns.items() if fnmatch.fnmatch(name, p))
        try:
            info = os.lstat(folder / name)
        except FileNotFoundError:
            continue
        fine = {FILE: stat.S_ISREG(info.st_mode), FOLDER: stat.S_ISDIR(info.st_mode),
                ANY: stat.S_ISREG(info.st_mode) or stat.S_ISDIR(info.st_mode)}[kind]
        if not fine:
            raise UnsafeFileError(folder / name, f"{_what(folder / name, info)}, not a {kind} of its own",
                                  _OWN_ADVICE)
