"""What every ``ignite-mnist`` command's parser shares: its name, one-line usage errors, each default said once."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any, NoReturn

from ignite_mnist.errors import EXIT_USAGE

__all__ = ["PROG", "HelpFormatter", "OneLineParser", "Repeated"]

PROG = "ignite-mnist"


class OneLineParser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose usage errors are a single line (exit 2).

    Example:
        >>> OneLineParser(prog="demo").parse_args(["--nope"])
        Traceback (most recent call last):
        ...
        SystemExit: 2
    """

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see --help)\n")


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """argparse's "(default: X)" after each flag's help, unless the help says it already, or there is none
    (None), or it goes without saying (a plain switch is off unless given).

    A description or epilog written on several lines keeps its lines (a list of commands);
    one written as one line is wrapped to the terminal, as argparse does.
    """

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        if "\n" in text:
            return "".join(indent + line for line in text.splitlines(keepends=True))
        return super()._fill_text(text, width, indent)

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if "(default:" in text or action.default is None or isinstance(action, argparse._StoreTrueAction):
            return text
        return super()._get_help_string(action) or text


class Repeated(argparse.Action):
    """A flag given once per value: ``--tracker a --tracker b`` -> ``["a", "b"]``, replacing the default list.

    (argparse's ``append`` would add to the default: ``["wandb", "a", "b"]``.)

    Example:
        >>> parser = OneLineParser(prog="demo")
        >>> _ = parser.add_argument("--tracker", action=Repeated, default=["wandb"])
        >>> parser.parse_args([]).tracker, parser.parse_args(["--tracker", "a", "--tracker", "b"]).tracker
        (['wandb'], ['a', 'b'])
    """

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any,
                 option_string: str | None = None) -> None:
        current: Sequence[Any] | None = getattr(namespace, self.dest, None)
        kept = [] if current is None or current is self.default else list(current)
        setattr(namespace, self.dest, [*kept, values])
