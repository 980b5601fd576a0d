"""``main``: pick the subcommand, run it, turn a user's error into one line and an exit code."""

from __future__ import annotations

import importlib
import logging
import sys
from collections.abc import Callable, Sequence

from ignite_mnist.cli.parsing import PROG
from ignite_mnist.cli.train import train_command
from ignite_mnist.errors import EXIT_SIGINT, ConfigError, IgniteMnistError

__all__ = ["COMMANDS", "main"]


def _lazy_command(module: str, name: str) -> Callable[[Sequence[str]], int]:
    """The subcommand ``name`` of ``ignite_mnist.cli.<module>``, imported only when it runs."""

    def command(argv: Sequence[str]) -> int:
        return getattr(importlib.import_module(f"ignite_mnist.cli.{module}"), f"{name}_command")(argv)

    return command


COMMANDS: dict[str, Callable[[Sequence[str]], int]] = {
    "train": train_command,
    **{name: _lazy_command("inference", name) for name in ("evaluate", "predict", "export")},
    **{name: _lazy_command("experiments", name) for name in ("sweep", "compare")},
}


class _ReportedBelow(logging.Filter):
    """Drops Ignite's "Engine run is terminating due to exception" lines: :func:`main` reports the error once."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "is terminating due to exception" not in record.getMessage()


_REPORTED_BELOW = _ReportedBelow()


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit code. ``train`` is the default command.

    Example:
        >>> main(["--epochs", "0"])
        Traceback (most recent call last):
        ...
        SystemExit: 2
    """
    args = list(sys.argv[1:] if argv is None else argv)
    logging.getLogger("ignite.engine.engine.Engine").addFilter(_REPORTED_BELOW)
    command = COMMANDS["train"]
    if args and args[0] in COMMANDS:
        command = COMMANDS[args.pop(0)]
    try:
        return command(args)
    except IgniteMnistError as error:
        hint = " (see --help)" if isinstance(error, ConfigError) else ""
        print(f"{PROG}: error: {error}{hint}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return EXIT_SIGINT
