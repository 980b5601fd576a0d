"""``ignite-mnist [train]``: the training command.

Every training flag is generated from a :class:`~ignite_mnist.config.TrainConfig`
field (its default, help, choices), so ``--help`` always matches the config::

    $ ignite-mnist --epochs 3 --model cnn --data-dir ../shared/data
    ...
    test accuracy 98.95 % (loss 0.0321); run directory /home/me/runs/mnist-cnn-20261125-101500
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from collections.abc import Sequence
from typing import Any

from ignite_mnist.cli.parsing import PROG, OneLineParser
from ignite_mnist.config import TrainConfig, flag_name
from ignite_mnist.errors import EXIT_OK, ConfigError
from ignite_mnist.recipes import RECIPES

__all__ = ["agent_style", "build_train_parser", "parse_train_args", "train_command"]

_TRUE, _FALSE = ("true", "1", "yes"), ("false", "0", "no")


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
            choices, other = f.metadata.get("choices"), f.metadata.get("other")
            if choices:  # open choices (other forms accepted) are checked by TrainConfig.validate
                options["choices"] = None if other else choices
                options["metavar"] = "{" + ",".join(choices + ((other[0],) if other else ())) + "}"
        parser.add_argument(flag_name(f.name), **options)
    parser.add_argument(
        "--recipe", choices=sorted(RECIPES), metavar="{" + ",".join(sorted(RECIPES)) + "}",
        **({} if suppress_defaults else {"default": "tutorial"}),
        help="start from a named set of settings; flags given beside it win. fast: "
             + " ".join(f"{flag_name(k)} {v}" if v is not True else flag_name(k) for k, v in RECIPES["fast"].items())
             + " (>= 99 %% test accuracy in 3 epochs); tutorial: the other flags' defaults",
    )
    return parser


def agent_style(argv: Sequence[str]) -> list[str]:
    """Read the command line ``wandb agent`` builds: ``--name=value``, with ``name`` a config field.

    The agent writes each sweep parameter as ``--{name}={value}`` with Python's ``str`` of
    the value (``wandb.sdk.launch.sweeps.utils.create_sweep_command_args``):
    ``--batch_size=128``, ``--amp=True``, ``--patience=None``. This turns such arguments
    into this parser's spelling: ``--batch-size=128``, ``--amp``, ``--no-amp``; a ``None``
    leaves the setting at its default (None). Anything else is kept as it is.

    Example:
        >>> agent_style(["--batch_size=128", "--amp=True", "--plots=False", "--patience=None", "--lr", "0.1"])
        ['--batch-size=128', '--amp', '--no-plots', '--lr', '0.1']
    """
    fields = {flag_name(f.name): f for f in dataclasses.fields(TrainConfig)}
    converted = []
    for arg in argv:
        name, equals, value = arg.partition("=")
        flag = "--" + name[2:].replace("_", "-") if name.startswith("--") else name
        f = fields.get(flag)
        if f is None:
            converted.append(arg)
        elif not equals:
            converted.append(flag)
        elif _field_type(f) is bool and value.lower() in _TRUE + _FALSE:
            converted.append(flag if value.lower() in _TRUE else "--no-" + flag[2:])
        elif value != "None" or f.default is not None:
            converted.append(f"{flag}={value}")
    return converted


def parse_train_args(argv: Sequence[str] | None = None, *, with_plan: bool = False) -> Any:
    """Command-line arguments -> a validated ``TrainConfig`` (exit 2 on a bad flag).

    ``--recipe NAME`` fills in :data:`~ignite_mnist.recipes.RECIPES` ``[NAME]`` under
    the flags given. With ``--resume``, settings not given on the command line
    (nor by ``--recipe``) come from the checkpoint, which is read once: with
    ``with_plan`` the result is ``(config, plan)``, the plan being the
    :class:`~ignite_mnist.resume.ResumePlan` (None without ``--resume``) to hand to ``run``.

    Example:
        >>> config = parse_train_args(["--recipe", "fast", "--epochs", "5"])
        >>> config.model, config.lr_schedule, config.epochs
        ('fastcnn', 'onecycle', 5)
    """
    argv = agent_style(sys.argv[1:] if argv is None else argv)
    parser = build_train_parser()
    values = vars(parser.parse_args(argv))
    recipe = RECIPES[values.pop("recipe")]
    explicit = set(vars(build_train_parser(suppress_defaults=True).parse_args(argv))) - {"recipe"}
    config = TrainConfig(**values | {name: value for name, value in recipe.items() if name not in explicit})
    try:
        config.validate()
    except ConfigError as error:
        parser.error(str(error))
    plan = None
    if config.resume is not None:
        from ignite_mnist.resume import config_for_resume

        config, plan = config_for_resume(config, explicit | set(recipe))
    return (config, plan) if with_plan else config


def train_command(argv: Sequence[str] | None) -> int:
    """``ignite-mnist [train] ...``: parse (before importing torch: usage errors answer at once), train, report."""
    config, plan = parse_train_args(argv, with_plan=True)
    from ignite_mnist.training import run

    summary = run(config, resume=plan)
    if os.environ.get("RANK", "0") == "0":  # under torchrun every process gets here; rank 0 reports
        print(f"test accuracy {summary.test_accuracy * 100:.2f} % (loss {summary.test_loss:.4f}); "
              f"run directory {summary.run_dir}")
    return EXIT_OK
