"""The TensorBoard tracker's place in the run directory (it has no settings of its own).

Read without torch, as every tracker's settings are; the tracker itself is
:mod:`ignite_mnist.tracking.tensorboard`.

Example:
    >>> from pathlib import Path
    >>> TensorboardSettings.log_dir(Path("runs/r"))
    PosixPath('runs/r')
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from ignite_mnist.settings.fields import TrackerSettings

__all__ = ["TensorboardSettings"]


@dataclass
class TensorboardSettings(TrackerSettings):
    """TensorBoard: event files in the run directory itself (a resumed run writes on in it).

    So ``tensorboard --logdir <output-dir>`` names each run as its folder is named.
    """

    FILES: ClassVar[tuple[str, ...]] = ("events.out.tfevents.*",)

    @classmethod
    def log_dir(cls, run: Path) -> Path:
        """The log dir of the run in folder ``run``: the folder itself."""
        return run
