"""The list of ``ignite-mnist`` commands: each name and its one-line summary, and the help text listing them.

The dispatcher (:mod:`ignite_mnist.cli.commands`) and the training command's
``--help`` (:mod:`ignite_mnist.cli.train`) both read it, so neither imports the other.
"""

from __future__ import annotations

from ignite_mnist.settings.arguments import PROG

__all__ = ["DEFAULT_COMMAND", "SUMMARIES", "VERSION_FLAG", "commands_help"]

#: Every command by name -> (the ``ignite_mnist.cli`` module that runs it, its summary in ``ignite-mnist --help``).
SUMMARIES: dict[str, tuple[str, str]] = {
    "train": ("train", "Train a model (the default command, when none is named)."),
    "evaluate": ("inference", "Test a checkpoint: accuracy, per-class accuracy, confusion matrix."),
    "predict": ("inference", "Classify image files (PNG, JPEG, BMP, GIF, TIFF, PNM) with a checkpoint."),
    "export": ("inference", "Write a checked TorchScript, ONNX or ExecuTorch file of a checkpoint's model."),
    "demo": ("inference", "Draw digits in the browser and see the model's probabilities live."),
    "sweep": ("experiments", "Search training settings from a W&B sweep file, on Optuna."),
    "compare": ("experiments", "Runs side by side: the settings that differ, their metrics."),
}
#: The command that runs when none is named.
DEFAULT_COMMAND = "train"
#: Given alone, prints the version and nothing else (handled before any command's parser).
VERSION_FLAG = "--version"


def commands_help() -> str:
    """The command list that ends ``ignite-mnist --help``, from :data:`SUMMARIES`.

    Example:
        >>> print(commands_help().splitlines()[1])
          train      Train a model (the default command, when none is named).
    """
    width = max(map(len, SUMMARIES)) + 2
    lines = [f"  {name:<{width}} {summary}" for name, (_, summary) in SUMMARIES.items()]
    return "\n".join(["commands:", *lines, "", f"Each command's own flags: {PROG} COMMAND --help.",
                      f"The version: {PROG} {VERSION_FLAG}."])
