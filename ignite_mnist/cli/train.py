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
from typing import TYPE_CHECKING, Any

from ignite_mnist.cli.parsing import PROG, HelpFormatter, OneLineParser, Repeated
from ignite_mnist.config import (
    TrainConfig,
    flag_name,
    require_named_model,
    setting_default,
    setting_name,
    setting_type,
)
from ignite_mnist.config_file import ConfigFile, dump_config, read_config_file
from ignite_mnist.console import say
from ignite_mnist.errors import EXIT_OK, ConfigError
from ignite_mnist.recipes import RECIPES

if TYPE_CHECKING:
    from ignite_mnist.report import Summary
    from ignite_mnist.resume import ResumePlan

__all__ = ["agent_style", "build_train_parser", "final_line", "parse_train_args", "train_command"]

_TRUE, _FALSE = ("true", "1", "yes"), ("false", "0", "no")


def _flag_options(f: dataclasses.Field, suppress_defaults: bool) -> dict[str, Any]:
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


def build_train_parser(prog: str = PROG, *, suppress_defaults: bool = False) -> argparse.ArgumentParser:
    """The training parser: one flag per ``TrainConfig`` field, defaults shown.

    With ``suppress_defaults`` the parsed namespace holds only the flags given.
    """
    from ignite_mnist.cli.commands import commands_help

    parser = OneLineParser(
        prog=prog,
        description="Train an MNIST classifier with PyTorch-Ignite. The defaults are the tutorial's recipe.",
        epilog=commands_help(),
        formatter_class=HelpFormatter,
        argument_default=argparse.SUPPRESS if suppress_defaults else None,
    )
    for f in dataclasses.fields(TrainConfig):
        parser.add_argument(flag_name(f.name), **_flag_options(f, suppress_defaults))
    parser.add_argument(
        "--recipe", choices=sorted(RECIPES), metavar="{" + ",".join(sorted(RECIPES)) + "}",
        **({} if suppress_defaults else {"default": "tutorial"}),
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


def _parse(argv: Sequence[str] | None) -> tuple[TrainConfig, ResumePlan | None, bool]:
    """The config (defaults, then --recipe, then --config, then the flags given), its resume plan, --print-config."""
    argv = agent_style(sys.argv[1:] if argv is None else argv)
    parser = build_train_parser()
    parser.parse_args(argv)  # --help and usage errors, with the defaults
    given = vars(build_train_parser(suppress_defaults=True).parse_args(argv))
    recipe = RECIPES[given.pop("recipe", "tutorial")]
    print_config, path = given.pop("print_config", False), given.pop("config", None)
    try:
        from_file = read_config_file(path) if path is not None else None
        from_file_values = from_file.values if from_file is not None else {}
        config = TrainConfig(**recipe | from_file_values | given)
        _validate(config, from_file, given)
    except ConfigError as error:
        parser.error(str(error))
    plan = None
    if config.resume is not None:
        from ignite_mnist.resume import config_for_resume

        config, plan = config_for_resume(config, set(given) | set(from_file_values) | set(recipe))
    require_named_model(config.model, given.get("model"), path if "model" in from_file_values else plan and plan.path)
    return config, plan, print_config


def parse_train_args(argv: Sequence[str] | None = None, *, with_plan: bool = False) -> Any:
    """Command-line arguments -> a validated ``TrainConfig`` (exit 2 on a bad flag or settings file).

    The settings come from the defaults, then ``--recipe NAME``
    (:data:`~ignite_mnist.recipes.RECIPES`), then ``--config FILE``, then the flags
    given, each over the one before. With ``--resume``, settings given neither way
    come from the checkpoint, which is read once: with ``with_plan`` the result
    is ``(config, plan)``, the plan being the :class:`~ignite_mnist.resume.ResumePlan`
    (None without ``--resume``) to hand to ``run``.

    Example:
        >>> config = parse_train_args(["--recipe", "fast", "--epochs", "5"])
        >>> config.model, config.lr_schedule, config.epochs
        ('fastcnn', 'onecycle', 5)
    """
    config, plan, _ = _parse(argv)
    return (config, plan) if with_plan else config


def final_line(summary: Summary, config: TrainConfig) -> str:
    """The line a training ends with: test results, whether (when, why) it stopped early, the run directory.

    Example:
        >>> from ignite_mnist.report import Summary
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
    config, plan, print_config = _parse(argv)
    if print_config:
        print(dump_config(config), end="")
        return EXIT_OK
    from ignite_mnist.training import run

    summary = run(config, resume=plan)
    if os.environ.get("RANK", "0") == "0":  # under torchrun every process gets here; rank 0 reports
        say(final_line(summary, config))
    return EXIT_OK
