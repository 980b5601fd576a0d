"""The W&B tracker's own settings (``--wandb-*``) and what it keeps in the run directory.

Read without torch or W&B, so ``--help`` and usage errors answer at once; the
tracker itself is :mod:`ignite_mnist.tracking.wandb`. ``$WANDB_*`` variables work as
usual: a setting left at None falls back to its variable.

Example:
    >>> WandbSettings(wandb_mode="offline", wandb_tags="a,b").wandb_mode
    'offline'
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import ClassVar

from ignite_mnist.errors import ConfigError
from ignite_mnist.registry import WANDB_ENV_MODES, WANDB_MODES, WANDB_WATCH
from ignite_mnist.settings.fields import TrackerSettings, setting

__all__ = ["WandbSettings"]


@dataclass
class WandbSettings(TrackerSettings):
    """Weights & Biases: its mode, project, entity, run name, tags, and what ``wandb.watch`` logs."""

    #: W&B's own folder in the run directory (unless ``$WANDB_DIR`` says otherwise); an offline run's
    #: staged model in ``wandb/data/``.
    FILES: ClassVar[tuple[str, ...]] = ("wandb",)

    wandb_mode: str = setting(
        "auto", "W&B tracking: auto is online with W&B credentials and offline (wandb sync later) without",
        choices=WANDB_MODES,
    )
    wandb_project: str | None = setting(None, "W&B project (default: $WANDB_PROJECT or ignite-mnist)", type=str)
    wandb_entity: str | None = setting(None, "W&B user or team (default: $WANDB_ENTITY or your default)", type=str)
    wandb_name: str | None = setting(None, "W&B run name (default: $WANDB_NAME or the run directory's name)", type=str)
    wandb_tags: str | None = setting(None, "comma-separated W&B tags (default: $WANDB_TAGS)", type=str)
    wandb_watch: str = setting(
        "off", "also log gradient and/or parameter histograms to W&B (wandb.watch, every --log-every)",
        choices=WANDB_WATCH,
    )

    def validate(self) -> None:
        """``$WANDB_MODE``, which ``--wandb-mode auto`` follows, must be a mode W&B accepts."""
        env_mode = os.environ.get("WANDB_MODE", "").strip().lower()
        if self.wandb_mode != "disabled" and env_mode and env_mode not in WANDB_ENV_MODES:
            raise ConfigError("$WANDB_MODE", f"invalid value {env_mode!r} (W&B accepts "
                              f"{', '.join(WANDB_ENV_MODES)}); fix or unset it, or pass --wandb-mode disabled")
