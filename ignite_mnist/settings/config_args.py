"""Command-line arguments -> a validated :class:`~ignite_mnist.settings.config.TrainConfig`: the training flags' parser.

Every training flag is generated from a ``TrainConfig`` field (its default, help,
choices), so ``--help`` always matches the config. The training command
(``ignite-mnist [train]``, :mod:`ignite_mnist.cli`) and the library alike read
arguments here: a sweep builds each trial's command line and parses it with
:func:`parse_train_args` (:mod:`ignite_mnist.experiments.sweep`), so nothing in the library
imports the command line.

Example:
    >>> config = parse_train_args(["--model", "cnn", "--epochs", "3"])
    >>> config.model, config.epochs
    ('cnn', 3)
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

from ignite_mnist.errors import ConfigError
from ignite_mnist.settings.arguments import PROG, HelpFormatter, OneLineParser, Repeated
from ignite_mnist.settings.config import (
    TrainConfig,
    flag_name,
    require_named_model,
    setting_default,
    setting_fields,
    setting_name,
    setting_type,
)
from ignite_mnist.settings.config_file import ConfigFile, read_config_file
from ignite_mnist.settings.recipes import RECIPES

if TYPE_CHECKING:
    from ignite_mnist.training.resume import ResumePlan

__all__ = ["ParsedTrainArgs", "agent_style", "build_train_parser", "parse_train_args", "parse_train_command"]

_TRUE, _FALSE = ("true", "1", "yes"), ("false", "0", "no")


def _flag_options(f: dataclasses.Field[Any], suppress_defaults: bool) -> dict[str, Any]:
    """``add_argument`` options of the flag of config field ``f``."""
    kind = setting_type(f)
    options: dict[str, Any] = {"help": f.metadata["help"], "dest": f.name}
    if not suppress_defaults:
        options["default"] = setting_default(f)
    if kind is bool:
        return options | {"action": argparse.BooleanOptionalAction}
    options |= {"type": kind, "metavar": f.name.upper()}
    if f.metadata.get("repeatable"):
        options["action"] = Repeated
    choices, other = f.metadata.get("choices"), f.metadata.get("other")
    if choices:  # open choices (other forms accepted) are checked by TrainConfig.validate
        options["choices"] = None if other else choices
        options["metavar"] = "{" + ",".join(choices + ((other[0],) if other else ())) + "}"
    return options


def build_train_parser(prog: str = PROG, *, suppress_defaults: bool = False,
                       epilog: str | None = None) -> argparse.ArgumentParser:
    """The training parser: one flag per setting (:func:`~ignite_mnist.settings.config.setting_fields`), defaults shown.

    With ``suppress_defaults`` the parsed namespace holds only the flags given;
    ``epilog`` ends ``--help`` (the command line puts its list of commands there).
    """
    parser = OneLineParser(
        prog=prog,
        description="Train an MNIST classifier with PyTorch-Ignite. The defaults are the tutorial's recipe.",
        epilog=epilog,
        formatter_class=HelpFormatter,
        argument_default=argparse.SUPPRESS if suppress_defaults else None,
    )
    for f in setting_fields().values():
        parser.add_argument(flag_name(f.name), **_flag_options(f, suppress_defaults))
    recipe_default: dict[str, Any] = {} if suppress_defaults else {"default": "tutorial"}
    parser.add_argument(
        "--recipe", choices=sorted(RECIPES), metavar="{" + ",".join(sorted(RECIPES)) + "}", **recipe_default,
        help="start from a named set of settings; --config and flags given beside it win. tutorial: the other "
             "flags' defaults; fast: >= 99 %% test accuracy in 3 epochs; one-epoch: >= 99 %% in one epoch; best: "
             "~99.65 %% in 10 epochs; mlp-best: the tutorial's MLP at ~98.5 %% (each recipe's settings: "
             "ignite-mnist --recipe NAME --print-config)",
    )
    parser.add_argument(
        "--config", metavar="FILE",
        help="read settings from a YAML, TOML or JSON file, by the names config.json uses (a run's own "
             "config.json repeats that run); flags given beside it win",
    )
    parser.add_argument("--print-config", action="store_true",
                        help="print the settings this command would train with, as YAML --config reads, and exit")
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
    fields = {flag_name(name): f for name, f in setting_fields().items()}
    converted = []
    for arg in argv:
        name, equals, value = arg.partition("=")
        flag = "--" + name[2:].replace("_", "-") if name.startswith("--") else name
        f = fields.get(flag)
        if f is None:
            converted.append(arg)
        elif not equals:
            converted.append(flag)
        elif setting_type(f) is bool and value.lower() in _TRUE + _FALSE:
            converted.append(flag if value.lower() in _TRUE else "--no-" + flag[2:])
        elif value != "None" or setting_default(f) is not None:
            converted.append(f"{flag}={value}")
    return converted


def _validate(config: TrainConfig, from_file: ConfigFile | None, given: dict[str, Any]) -> None:
    """``config.validate()``; a refused value that came from the file is reported at its line there."""
    try:
        config.validate()
    except ConfigError as error:
        name = setting_name(error.flag)
        if from_file is not None and name in from_file.values and name not in given:
            raise from_file.error(name, error.message) from None
        raise


class ParsedTrainArgs(NamedTuple):
    """What a training command line says: the settings, the resume plan (with ``--resume``), ``--print-config``."""

    config: TrainConfig
    plan: ResumePlan | None
    print_config: bool


def parse_train_command(argv: Sequence[str] | None, *, epilog: str | None = None) -> ParsedTrainArgs:
    """The config (defaults, then --recipe, then --config, then the flags given), its resume plan, --print-config.

    ``--help`` and usage errors exit here (``epilog`` ends the help), as argparse does.
    """
    argv = agent_style(sys.argv[1:] if argv is None else argv)
    parser = build_train_parser(epilog=epilog)
    parser.parse_args(argv)  # --help and usage errors, with the defaults
    given = vars(build_train_parser(suppress_defaults=True).parse_args(argv))
    recipe = RECIPES[given.pop("recipe", "tutorial")]
    print_config, path = given.pop("print_config", False), given.pop("config", None)
    try:
        from_file = read_config_file(path) if path is not None else None
        from_file_values = from_file.values if from_file is not None else {}
        config = TrainConfig.from_dict(recipe | from_file_values | given)
        _validate(config, from_file, given)
    except ConfigError as error:
        parser.error(str(error))
    plan = None
    if config.resume is not None:
        from ignite_mnist.training.resume import config_for_resume

        config, plan = config_for_resume(config, set(given) | set(from_file_values) | set(recipe))
    require_named_model(config.model, given.get("model"), path if "model" in from_file_values else plan and plan.path)
    return ParsedTrainArgs(config, plan, print_config)


def parse_train_args(argv: Sequence[str] | None = None, *, with_plan: bool = False) -> Any:
    """Command-line arguments -> a validated ``TrainConfig`` (exit 2 on a bad flag or settings file).

    The settings come from the defaults, then ``--recipe NAME``
    (:data:`~ignite_mnist.settings.recipes.RECIPES`), then ``--config FILE``, then the flags
    given, each over the one before. With ``--resume``, settings given neither way
    come from the checkpoint, which is read once: with ``with_plan`` the result
    is ``(config, plan)``, the plan being the :class:`~ignite_mnist.training.resume.ResumePlan`
    (None without ``--resume``) to hand to ``run``.

    Example:
        >>> config = parse_train_args(["--recipe", "fast", "--epochs", "5"])
        >>> config.model, config.lr_schedule, config.epochs
        ('fastcnn', 'onecycle', 5)
    """
    config, plan, _ = parse_train_command(argv)
    return (config, plan) if with_plan else config
