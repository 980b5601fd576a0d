"""``ignite-mnist [train]``: the training command.

The flags are :mod:`ignite_mnist.settings.config_args`' (one per
:class:`~ignite_mnist.settings.config.TrainConfig` field); this module adds the list of
commands to ``--help``, runs the training and prints its last line::

    $ ignite-mnist --epochs 3 --model cnn --data-dir ../shared/data
    ...
    test accuracy 98.95 % (loss 0.0321); run directory /home/me/runs/mnist-cnn-20261125-101500
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import TYPE_CHECKING

from ignite_mnist.cli.command_list import commands_help
from ignite_mnist.console import say
from ignite_mnist.errors import EXIT_OK
from ignite_mnist.settings.config import TrainConfig
from ignite_mnist.settings.config_args import build_train_parser, parse_train_command
from ignite_mnist.settings.config_file import dump_config

if TYPE_CHECKING:
    from ignite_mnist.training.report import Summary

__all__ = ["final_line", "train_command", "train_parser"]


def train_parser() -> argparse.ArgumentParser:
    """The parser of ``ignite-mnist [train]``: the training flags, then the list of commands."""
    return build_train_parser(epilog=commands_help())


def final_line(summary: Summary, config: TrainConfig) -> str:
    """The line a training ends with: test results, whether (when, why) it stopped early, the run directory.

    Example:
        >>> from ignite_mnist.training.report import Summary
        >>> summary = Summary("runs/r", 0.9812, 0.0611, 0.98, 7, 60.0, 1000.0, stopped_early=True, stopped_epoch=7)
        >>> for part in final_line(summary, TrainConfig(patience=3)).split("; "):
        ...     print(part)
        test accuracy 98.12 % (loss 0.0611)
        stopped early after epoch 7 of 10: val_accuracy did not improve for 3 epochs
        run directory runs/r
    """
    stopped = ""
    if summary.stopped_early:
        epochs = f"{config.patience} epoch{'s' if config.patience != 1 else ''}"
        stopped = (f"; stopped early after epoch {summary.stopped_epoch} of {config.epochs}: {config.monitor} "
                   f"did not improve for {epochs}")
    return (f"test accuracy {summary.test_accuracy * 100:.2f} % (loss {summary.test_loss:.4f}){stopped}; "
            f"run directory {summary.run_dir}")


def train_command(argv: Sequence[str] | None) -> int:
    """Train a model (the default command, when none is named).

    Parses before importing torch, so ``--help`` and usage errors answer at once;
    ``--print-config`` prints the settings and stops there.
    """
    config, plan, print_config = parse_train_command(argv, epilog=commands_help())
    if print_config:
        print(dump_config(config), end="")
        return EXIT_OK
    from ignite_mnist.runtime.distributed import is_rank_zero
    from ignite_mnist.training.managed import run

    summary = run(config, resume=plan)
    if is_rank_zero():  # under torchrun every process gets here; rank 0 reports
        say(final_line(summary, config))
    return EXIT_OK
