"""The module paths of 0.1 that 0.2 moved into layer packages, kept working for one minor version.

``import ignite_mnist.config`` still gives the module now at ``ignite_mnist.settings.config``
(the same object, so patching either name patches both), with a ``DeprecationWarning``
that names the new place; the old names go in 0.3 (docs/contributing.md, "Deprecation
policy"; CHANGELOG.md lists every move). ``ignite_mnist.training`` and
``ignite_mnist.inference`` are packages now: the names their modules had are forwarded
from the package in the same way (:func:`moved_attribute`).

Example:
    >>> import warnings
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     from ignite_mnist.run_dir import RunDir
    >>> RunDir.__module__, caught[0].category.__name__
    ('ignite_mnist.storage.run_dir', 'DeprecationWarning')
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys
import warnings
from collections.abc import Sequence
from types import ModuleType
from typing import Any

__all__ = ["MOVED_MODULES", "install", "moved_attribute"]

#: Old module path -> new one (0.2.0).
MOVED_MODULES = {
    f"ignite_mnist.{old}": f"ignite_mnist.{new}" for old, new in {
        "arguments": "settings.arguments", "config": "settings.config", "config_args": "settings.config_args",
        "config_file": "settings.config_file", "recipes": "settings.recipes",
        "checkpoint_files": "storage.checkpoint_files", "checkpoints": "storage.checkpoints",
        "files": "storage.files", "run_dir": "storage.run_dir",
        "augment": "data.augment", "folders": "data.folders", "preprocess": "data.preprocess",
        "devices": "runtime.devices", "distributed": "runtime.distributed", "fast": "runtime.fast",
        "threads": "runtime.threads",
        "parts": "training.parts", "plots": "training.plots", "report": "training.report",
        "resume": "training.resume", "wiring": "training.wiring",
        "demo": "inference.demo", "export": "inference.export", "export_executorch": "inference.executorch",
        "compare": "experiments.compare", "sweep": "experiments.sweep", "sweep_spec": "experiments.sweep_spec",
        "sweep_storage": "experiments.sweep_storage",
    }.items()
}
REMOVED_IN = "0.3"


def _warn(old: str, new: str) -> None:
    warnings.warn(f"{old} moved to {new} in ignite-mnist 0.2; the old name goes in {REMOVED_IN}",
                  DeprecationWarning, stacklevel=3)


class _MovedModules(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Finds an old module path (after every other finder failed) and hands back the module at the new one."""

    def find_spec(self, fullname: str, path: Sequence[str] | None = None,
                  target: ModuleType | None = None) -> importlib.machinery.ModuleSpec | None:
        return importlib.util.spec_from_loader(fullname, self) if fullname in MOVED_MODULES else None

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType:
        _warn(spec.name, MOVED_MODULES[spec.name])
        return importlib.import_module(MOVED_MODULES[spec.name])

    def exec_module(self, module: ModuleType) -> None:
        """The module is already the one at the new path: nothing to run."""


def install() -> None:
    """Put the finder last on ``sys.meta_path`` (once)."""
    if not any(isinstance(finder, _MovedModules) for finder in sys.meta_path):
        sys.meta_path.append(_MovedModules())


def moved_attribute(package: str, module: str, names: Sequence[str], name: str) -> Any:
    """A package's ``__getattr__`` for the ``names`` its old module of the same path had, now in ``module``.

    Raises:
        AttributeError: ``name`` is not one of them.
    """
    if name not in names:
        raise AttributeError(f"module {package!r} has no attribute {name!r}")
    _warn(f"{package}.{name}", f"{module}.{name}")
    return getattr(importlib.import_module(module), name)
