"""The command line: ``ignite-mnist``, ``python -m ignite_mnist`` and ``examples/train_mnist.py``.

Every training flag is generated from a :class:`~ignite_mnist.config.TrainConfig`
field (its default, help, choices), so ``--help`` always matches the config.
Errors the user can fix end in one line and an exit code
(see :mod:`ignite_mnist.errors`): 0 done, 1 runtime failure, 2 usage error.

Example:
    $ ignite-mnist --epochs 3 --model cnn --data-dir ../shared/data
    ...
    test accuracy 98.95 % (loss 0.0321); run directory runs/mnist-cnn-20261125-101500
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

from ignite_mnist.config import TrainConfig, flag_name
from ignite_mnist.errors import EXIT_OK, EXIT_USAGE, ConfigError, IgniteMnistError
from ignite_mnist.recipes import RECIPES

__all__ = ["build_train_parser", "main", "parse_train_args"]

PROG = "ignite-mnist"


class OneLineParser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose usage errors are a single line (exit 2)."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see --help)\n")


def _field_type(f: dataclasses.Field) -> Any:
    declared = f.metadata.get("type")
    if declared is not None:
        return declared
    default = f.default_factory() if f.default is dataclasses.MISSING else f.default  # type: ignore[misc]
    return type(default)


def build_train_parser(prog: str = PROG, *, suppress_defaults: bool = False) -> argparse.ArgumentParser:
    """The training parser: one flag per ``TrainConfig`` field, defaults shown.

    With ``suppress_defaults`` the parsed namespace holds only the flags given.
    """
    parser = OneLineParser(
        prog=prog,
        description="Train an MNIST classifier with PyTorch-Ignite. The defaults are the tutorial's recipe.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        argument_default=argparse.SUPPRESS if suppress_defaults else None,
    )
    for f in dataclasses.fields(TrainConfig):
        kind = _field_type(f)
        default = f.default_factory() if f.default is dataclasses.MISSING else f.default  # type: ignore[misc]
        options: dict[str, Any] = {"help": f.metadata["help"], "dest": f.name}
        if not suppress_defaults:
            options["default"] = default
        if kind is bool:
            options["action"] = argparse.BooleanOptionalAction
        else:
            options["type"] = kind
            options["metavar"] = f.name.upper()
            if f.metadata.get("choices"):
                options["choices"] = f.metadata["choices"]
                options["metavar"] = "{" + ",".join(f.metadata["choices"]) + "}"
        parser.add_argument(flag_name(f.name), **options)
    parser.add_argument(
        "--recipe", choices=sorted(RECIPES), metavar="{" + ",".join(sorted(RECIPES)) + "}",
        **({} if suppress_defaults else {"default": "tutorial"}),
        help="start from a named set of settings; flags given beside it win. fast: "
             + " ".join(f"{flag_name(k)} {v}" if v is not True else flag_name(k) for k, v in RECIPES["fast"].items())
             + " (>= 99 %% test accuracy in 3 epochs); tutorial: the other flags' defaults",
    )
    return parser


def parse_train_args(argv: Sequence[str] | None = None) -> TrainConfig:
    """Command-line arguments -> a validated ``TrainConfig`` (exit 2 on a bad flag).

    ``--recipe NAME`` fills in :data:`~ignite_mnist.recipes.RECIPES` ``[NAME]`` under
    the flags given. With ``--resume``, settings not given on the command line
    (nor by ``--recipe``) come from the checkpoint.

    Example:
        >>> config = parse_train_args(["--recipe", "fast", "--epochs", "5"])
        >>> config.model, config.lr_schedule, config.epochs
        ('fastcnn', 'onecycle', 5)
    """
    parser = build_train_parser()
    values = vars(parser.parse_args(argv))
    recipe = RECIPES[values.pop("recipe")]
    explicit = set(vars(build_train_parser(suppress_defaults=True).parse_args(argv))) - {"recipe"}
    config = TrainConfig(**values | {name: value for name, value in recipe.items() if name not in explicit})
    try:
        config.validate()
    except ConfigError as error:
        parser.error(str(error))
    if config.resume is not None:
        from ignite_mnist.training import config_for_resume

        config = config_for_resume(config, explicit | set(recipe))
    return config


def train_command(argv: Sequence[str] | None) -> int:
    config = parse_train_args(argv)  # before importing torch: usage errors answer at once
    from ignite_mnist.training import run

    summary = run(config)
    if os.environ.get("RANK", "0") == "0":  # under torchrun every process gets here; rank 0 reports
        print(f"test accuracy {summary.test_accuracy * 100:.2f} % (loss {summary.test_loss:.4f}); "
              f"run directory {summary.run_dir}")
    return EXIT_OK


def _inference_command(name: str) -> Any:
    """A subcommand of :mod:`ignite_mnist.inference_cli`, imported only when it runs."""

    def command(argv: Sequence[str]) -> int:
        from ignite_mnist import inference_cli

        return getattr(inference_cli, f"{name}_command")(argv)

    return command


COMMANDS = {"train": train_command, **{name: _inference_command(name) for name in ("evaluate", "predict", "export")}}


class _ReportedBelow(logging.Filter):
    """Drops Ignite's "Engine run is terminating due to exception" lines: :func:`main` reports the error once."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "is terminating due to exception" not in record.getMessage()


_REPORTED_BELOW = _ReportedBelow()


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit code. ``train`` is the default command.

    Example:
        >>> main(["--epochs", "0"])  # doctest: +SKIP
        ignite-mnist: error: --epochs: must be > 0, got 0 (see --help)
        2
    """
    args = list(sys.argv[1:] if argv is None else argv)
    logging.getLogger("ignite.engine.engine.Engine").addFilter(_REPORTED_BELOW)
    command = COMMANDS["train"]
    if args and args[0] in COMMANDS:
        command = COMMANDS[args.pop(0)]
    try:
        return command(args)
    except IgniteMnistError as error:
        if isinstance(error, ConfigError):
            print(f"{PROG}: error: {error} (see --help)", file=sys.stderr)
        else:
            print(f"{PROG}: error: {error}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
