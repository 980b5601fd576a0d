"""How a setting is declared and checked: :func:`setting`, the range checks, :class:`TrackerSettings`.

:class:`~ignite_mnist.settings.config.TrainConfig` declares the run's settings with
these, and each tracker its own (``tracking/*_settings``), so a tracker's settings
need nothing of ``TrainConfig`` (``TrainConfig`` builds each tracker's settings by its
registry name: :data:`~ignite_mnist.registry.TRACKER_SETTINGS`).

Example:
    >>> flag_name("batch_size"), setting_name("--batch-size")
    ('--batch-size', 'batch_size')
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import field
from typing import Any, ClassVar

from ignite_mnist.errors import ConfigError

__all__ = [
    "NON_NEGATIVE",
    "POSITIVE",
    "PROBABILITY",
    "SEED",
    "Check",
    "TrackerSettings",
    "check_setting",
    "flag_name",
    "setting",
    "setting_default",
    "setting_name",
    "setting_type",
]

Check = tuple[Callable[[Any], bool], str]

POSITIVE: Check = (lambda v: v > 0, "must be > 0")
NON_NEGATIVE: Check = (lambda v: v >= 0, "must be >= 0")
PROBABILITY: Check = (lambda v: 0 <= v < 1, "must be in [0, 1)")
SEED: Check = (lambda v: 0 <= v < 2**32, "must be between 0 and 4294967295 (NumPy's seed range)")


def flag_name(field_name: str) -> str:
    """The command-line flag of a config field: ``batch_size`` -> ``--batch-size``."""
    return "--" + field_name.replace("_", "-")


def setting_name(flag: str) -> str:
    """The config field of a command-line flag: ``--batch-size`` -> ``batch_size``."""
    return flag.removeprefix("--").replace("-", "_")


def setting(
    default: Any = dataclasses.MISSING,
    help: str = "",
    *,
    choices: tuple[str, ...] | None = None,
    other: tuple[str, Callable[[str], bool]] | None = None,
    check: Check | None = None,
    type: Callable[[str], Any] | None = None,
    default_factory: Callable[[], Any] | None = None,
    repeatable: bool = False,
) -> Any:
    """Declare one setting: a dataclass field whose metadata feeds the CLI and validation.

    ``other`` opens ``choices``: ``(what else is accepted, its test)``, e.g.
    ``("package.module:Class", is_import_path)``. A ``repeatable`` setting is a
    list of ``type`` values, its flag given once per value.
    """
    metadata = {"help": help, "choices": choices, "other": other, "check": check, "type": type,
                "repeatable": repeatable}
    if default_factory is not None:
        return field(default_factory=default_factory, metadata=metadata)
    return field(default=default, metadata=metadata)


def setting_default(f: dataclasses.Field[Any]) -> Any:
    """A setting's default value."""
    if f.default is dataclasses.MISSING and f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return f.default


def setting_type(f: dataclasses.Field[Any]) -> type:
    """What one value of a setting is (``int`` for ``--patience``, ``str`` for each ``--tracker``)."""
    return f.metadata.get("type") or type(setting_default(f))


def check_setting(f: dataclasses.Field[Any], value: Any) -> None:
    """A setting's value (each item of a repeatable one) against its declared choices and range."""
    for item in value if f.metadata.get("repeatable") else [value]:
        _check_value(f, item)


def _check_value(f: dataclasses.Field[Any], value: Any) -> None:
    """One value of a setting against its declared choices and range."""
    choices, other = f.metadata.get("choices"), f.metadata.get("other")
    if choices and value not in choices and not (other and other[1](value)):
        accepted = ", ".join(choices) + (f" or {other[0]}" if other else "")
        raise ConfigError(flag_name(f.name), f"invalid choice {value!r} (choose from {accepted})")
    check = f.metadata.get("check")
    if isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(flag_name(f.name), f"must be a finite number, got {value}")
    if check is not None and value is not None and not check[0](value):
        raise ConfigError(flag_name(f.name), f"{check[1]}, got {value}")


class TrackerSettings:
    """Base of a tracker's own settings: a dataclass of :func:`setting` fields, each named ``<tracker>_<what>``.

    Each tracker declares its settings in a small module of its own (no torch), named
    in :data:`~ignite_mnist.registry.TRACKER_SETTINGS`; :class:`TrainConfig` holds one
    instance per tracker and knows none by name. Their fields are settings like any
    other: a flag each (``--wandb-mode``), a key each in ``config.json`` and ``--config``
    files (``wandb_mode``), checked against their choices and ranges.

    Attributes:
        FILES: the files and folders the tracker keeps in the run directory (``wandb``, ``tensorboard``);
            the tracker makes its paths from them, :class:`~ignite_mnist.storage.run_dir.RunDir` names none.
    """

    FILES: ClassVar[tuple[str, ...]] = ()

    def validate(self) -> None:
        """Checks beyond each field's choices and range (e.g. the environment the tracker reads)."""

    def options(self) -> dict[str, Any]:
        """The settings as the tracker's own options, without the ``<tracker>_`` prefix (``wandb_mode`` ->
        ``mode``): what :func:`~ignite_mnist.handlers.attach_tracker` takes, so the command line and a
        hand-written trainer build a tracker the same way."""
        return {f.name.split("_", 1)[1]: getattr(self, f.name) for f in dataclasses.fields(self)}  # type: ignore[arg-type]
