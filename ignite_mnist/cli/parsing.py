"""What every ``ignite-mnist`` command's parser shares: the program name and one-line usage errors."""

from __future__ import annotations

import argparse
from typing import NoReturn

from ignite_mnist.errors import EXIT_USAGE

__all__ = ["PROG", "OneLineParser"]

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
