"""The TensorBoard tracker's place in the run directory (it has no settings of its own).

Read without torch, as every tracker's settings are; the tracker itself is
:mod:`ignite_mnist.tracking.tensorboard`.

Example:
    >>> from pathlib import Path
    >>> TensorboardSettings.log_dir(Path("runs/r"))
    PosixPath('runs/r/tensorboard')
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from ignite_mnist.config import TrackerSettings

__all__ = ["TensorboardSettings"]


@dataclass
class TensorboardSettings(TrackerSettings):
    """TensorBoard: event files in the run directory's ``tensorboard/`` (a resumed run writes on in it)."""

    FILES: ClassVar[tuple[str, ...]] = ("tensorboard",)

    @classmethod
    def log_dir(cls, run: Path) -> Path:
        """The log dir of the run in folder ``run``: ``tensorboard --logdir`` it."""
        return run / cls.FILES[0]
