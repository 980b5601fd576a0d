"""Errors that end a run with one line for the user, and the exit codes they map to.

Anything raised as an :class:`IgniteMnistError` is the user's to fix (a bad flag,
missing data, an unusable checkpoint): the CLI prints its message on one line,
without a traceback, and exits with :attr:`IgniteMnistError.exit_code`.

Example:
    >>> raise DataError("train-images-idx3-ubyte: file is empty")
    Traceback (most recent call last):
    ...
    ignite_mnist.errors.DataError: train-images-idx3-ubyte: file is empty
"""

from __future__ import annotations

__all__ = [
    "EXIT_FAILURE",
    "EXIT_OK",
    "EXIT_SIGINT",
    "EXIT_SIGPIPE",
    "EXIT_SIGTERM",
    "EXIT_USAGE",
    "TRACEBACK_ENV",
    "CheckpointError",
    "ConfigError",
    "DataError",
    "IgniteMnistError",
    "Interrupted",
    "RunDirError",
    "RunFinishedError",
    "SweepError",
    "TrainingError",
    "UnsafeFileError",
    "WriteError",
    "first_line",
    "wants_traceback",
]

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_SIGINT = 130
EXIT_SIGTERM = 143
#: The reader of our output went away (``ignite-mnist evaluate RUN | head -1``): the shell's code for SIGPIPE.
EXIT_SIGPIPE = 141
#: Set to 1 to see the full traceback of an error inside your own code (a ``--model`` class), not one line.
TRACEBACK_ENV = "IGNITE_MNIST_TRACEBACK"


class IgniteMnistError(Exception):
    """A failure the user can fix; its message is the whole report."""

    exit_code = EXIT_FAILURE


class ConfigError(IgniteMnistError, ValueError):
    """A setting is out of range or conflicts with another one (a usage error).

    Args:
        flag: the command-line flag at fault, e.g. ``"--epochs"``.
        message: what is wrong and what to do, e.g. ``"must be > 0, got 0"``.
    """

    exit_code = EXIT_USAGE

    def __init__(self, flag: str, message: str) -> None:
        super().__init__(f"{flag}: {message}")
        self.flag = flag
        self.message = message


class DataError(IgniteMnistError):
    """Dataset files are missing, cannot be downloaded, or are malformed."""


class CheckpointError(IgniteMnistError):
    """A checkpoint is missing, unreadable, unsafe, or belongs to another run."""


class RunFinishedError(CheckpointError):
    """``trainer.run`` on a restored run that had already finished (Ignite would train it again from scratch)."""


class RunDirError(IgniteMnistError):
    """The run directory cannot be used (not writable, holds another run, busy)."""


class WriteError(IgniteMnistError):
    """A file could not be written: the disk is full, the folder read-only, permission denied.

    Args:
        path: the file.
        error: the ``OSError`` the write raised.
        advice: what is intact and what to do, appended after a semicolon.

    Example:
        >>> str(WriteError("runs/a/metrics.jsonl", OSError(28, "No space left on device")))
        'cannot write runs/a/metrics.jsonl (No space left on device)'
    """

    def __init__(self, path: object, error: OSError | str, advice: str = "") -> None:
        self.path = path
        self.reason = error if isinstance(error, str) else (error.strerror or first_line(error))
        super().__init__(f"cannot write {path} ({self.reason})" + (f"; {advice}" if advice else ""))

    def with_advice(self, advice: str) -> WriteError:
        """The same error with ``advice`` (what is intact, what to do) instead of its own."""
        return WriteError(self.path, self.reason, advice)


class TrainingError(IgniteMnistError):
    """Training cannot go on (for example the loss became NaN or infinite)."""


class SweepError(IgniteMnistError):
    """A sweep cannot go on: its study's database cannot be reached, a worker failed, Optuna is missing."""


class UnsafeFileError(IgniteMnistError):
    """A file ignite-mnist was to read or write is not what its name says: a link out of its folder, a pipe, a
    device, a folder, or bigger than its limit (see docs/security.md). Nothing was read or written through it.

    Args:
        path: the file.
        reason: what it is, e.g. ``"a pipe (FIFO), not a regular file"``.
        advice: what to do.

    Example:
        >>> str(UnsafeFileError("runs/a/metrics.jsonl", "a pipe (FIFO), not a regular file", "remove it"))
        'runs/a/metrics.jsonl: refused: a pipe (FIFO), not a regular file; remove it'
    """

    def __init__(self, path: object, reason: str, advice: str) -> None:
        self.path, self.reason, self.advice = path, reason, advice
        super().__init__(f"{path}: refused: {reason}; {advice}")


class Interrupted(IgniteMnistError):
    """Training stopped on SIGINT/SIGTERM after saving a resumable checkpoint.

    Its exit code is the shell's for the signal: `EXIT_SIGINT` (130) for
    SIGINT, `EXIT_SIGTERM` (143) for SIGTERM.

    Example:
        >>> import signal
        >>> Interrupted("stopped", signal.SIGTERM).exit_code == EXIT_SIGTERM
        True
    """

    def __init__(self, message: str, signal_number: int) -> None:
        super().__init__(message)
        self.signal_number = int(signal_number)
        self.exit_code = 128 + self.signal_number


def first_line(error: BaseException, limit: int = 200) -> str:
    """The first line of an error's message (at most ``limit`` characters), or its type when it has none.

    Example:
        >>> first_line(RuntimeError("disk full\\nC++ stack trace ..."))
        'disk full'
        >>> first_line(KeyError())
        'KeyError'
    """
    text = str(error).strip()
    return text.splitlines()[0][:limit] if text else type(error).__name__


def wants_traceback() -> bool:
    """Whether ``$IGNITE_MNIST_TRACEBACK`` asks for the full traceback of errors in your own code.

    Example:
        >>> import os
        >>> os.environ.pop(TRACEBACK_ENV, None) and None
        >>> wants_traceback()
        False
    """
    import os

    return os.environ.get(TRACEBACK_ENV, "").strip().lower() in ("1", "true", "yes")
