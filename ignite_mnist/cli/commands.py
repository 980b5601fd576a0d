"""``main``: pick the subcommand, run it, turn a user's error into one line and an exit code.

``ignite-mnist --version`` prints the version (``ignite_mnist.__version__``) before any command
is chosen, importing nothing more.

:data:`COMMANDS` is the command table: each name and the function that runs it (its module imported
only when it runs), from the list in :mod:`ignite_mnist.cli.command_list`.
"""

from __future__ import annotations

import contextlib
import gc
import importlib
import logging
import signal
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from types import FrameType

from ignite_mnist._version import __version__
from ignite_mnist.cli.command_list import DEFAULT_COMMAND, SUMMARIES, VERSION_FLAG
from ignite_mnist.console import say_at_line_start, silence
from ignite_mnist.errors import EXIT_OK, EXIT_SIGINT, EXIT_SIGPIPE, ConfigError, IgniteMnistError, Interrupted
from ignite_mnist.settings.arguments import PROG

__all__ = ["COMMANDS", "main"]


def _lazy_command(module: str, name: str, summary: str) -> Callable[[Sequence[str]], int]:
    """The subcommand ``name`` of ``ignite_mnist.cli.<module>``, imported only when it runs."""

    def command(argv: Sequence[str]) -> int:
        run: Callable[[Sequence[str]], int] = getattr(importlib.import_module(f"ignite_mnist.cli.{module}"),
                                                      f"{name}_command")
        return run(argv)

    command.__doc__ = summary
    return command


#: Every command by name (:data:`~ignite_mnist.cli.command_list.SUMMARIES`); ``train`` runs when none is named.
COMMANDS: dict[str, Callable[[Sequence[str]], int]] = {
    name: _lazy_command(module, name, summary) for name, (module, summary) in SUMMARIES.items()
}


class _ReportedBelow(logging.Filter):
    """Drops Ignite's "Engine run is terminating due to exception" lines: :func:`main` reports the error once."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "is terminating due to exception" not in record.getMessage()


_REPORTED_BELOW = _ReportedBelow()


def _hint(name: str) -> str:
    """Where a usage error of command ``name`` is explained."""
    return " (see --help)" if name == DEFAULT_COMMAND else f" (see {PROG} {name} --help)"


@contextlib.contextmanager
def _sigterm_says_so(name: str) -> Iterator[None]:
    """While a command runs (and where it does not handle signals itself, as training does), SIGTERM ends it
    with one line and exit 143 instead of silently."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    before = "; nothing was trained or written" if name == DEFAULT_COMMAND else ""

    def stop(signum: int, frame: FrameType | None) -> None:
        raise Interrupted(f"interrupted by SIGTERM before {PROG} {name} had finished{before}", signum)

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit code. ``train`` is the default command.

    Called without ``argv`` it is the process's own command line (``ignite-mnist``, ``python -m ignite_mnist``)
    and the process ends next: the objects left are then frozen out of the garbage collector (:func:`gc.freeze`),
    so that the interpreter's exit frees them without tracing them all first (with torch and Ignite loaded that
    tracing took 1.3-2.2 s on the 2-core machine; see docs/benchmarks.md).

    Example:
        >>> main(["--epochs", "0"])
        Traceback (most recent call last):
        ...
        SystemExit: 2
        >>> main(["--version"]) == 0  # doctest: +ELLIPSIS
        ignite-mnist 0...
        True
    """
    try:
        return _run(list(sys.argv[1:] if argv is None else argv))
    finally:
        if argv is None:
            gc.freeze()


def _run(args: list[str]) -> int:
    """:func:`main` for the arguments ``args``."""
    if args == [VERSION_FLAG]:
        print(f"{PROG} {__version__}")
        return EXIT_OK
    logging.getLogger("ignite.engine.engine.Engine").addFilter(_REPORTED_BELOW)
    name = args.pop(0) if args and args[0] in COMMANDS else DEFAULT_COMMAND
    try:
        with _sigterm_says_so(name):
            code = COMMANDS[name](args)
            sys.stdout.flush()  # here, so that a closed pipe is caught below and not at exit
    except Interrupted as error:  # asked for, not a failure: said as it is, not after the terminal's "^C"
        say_at_line_start(f"{PROG}: {error}", sys.stderr)
        return error.exit_code
    except IgniteMnistError as error:
        hint = _hint(name) if isinstance(error, ConfigError) else ""
        print(f"{PROG}: error: {error}{hint}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        say_at_line_start(f"{PROG}: interrupted", sys.stderr)
        return EXIT_SIGINT
    except BrokenPipeError:  # the reader went away (| head): stop quietly, as a tool killed by SIGPIPE does
        silence("stdout")  # Python's last flush at exit must not fail
        return EXIT_SIGPIPE
    return code
