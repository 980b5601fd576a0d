"""Which modules the API reference shows, one page each; the rest are internals.

A module is public unless it is listed in ``INTERNAL`` (or its name has a part
starting with ``_``), so a new module gets its page without editing the docs.
The internals are what the managed run and the command line are made of; their
public objects are re-exported by a public module (``ignite_mnist.handlers``
re-exports every handler, ``ignite_mnist.inference.export`` reaches ExecuTorch).
"""

from __future__ import annotations

import pkgutil

PACKAGE = "ignite_mnist"
#: Modules kept out of the reference: the command line, the run's phases, and helpers behind public modules.
INTERNAL = (
    "ignite_mnist.__main__",
    "ignite_mnist.settings.arguments",
    "ignite_mnist.cli",
    "ignite_mnist.storage.checkpoint_files",
    "ignite_mnist.settings.config_file",
    "ignite_mnist.console",
    "ignite_mnist.runtime.devices",
    "ignite_mnist.inference.executorch",
    "ignite_mnist.runtime.fast",
    "ignite_mnist.storage.files",
    "ignite_mnist.handlers.",
    "ignite_mnist.optim",
    "ignite_mnist.training.parts",
    "ignite_mnist.training.report",
    "ignite_mnist.experiments.sweep_spec",
    "ignite_mnist.training.wiring",
)


def is_internal(module: str) -> bool:
    """Whether ``module`` stays out of the reference (a prefix ending in ``.`` covers a package's submodules)."""
    if any(part.startswith("_") for part in module.split(".")):
        return True
    return any(module.startswith(name) if name.endswith(".") else module == name or module.startswith(name + ".")
               for name in INTERNAL)


def public_modules() -> list[str]:
    """The documented modules: the package first, then the rest by name."""
    import ignite_mnist

    found = (module.name for module in pkgutil.walk_packages(ignite_mnist.__path__, PACKAGE + "."))
    return [PACKAGE, *sorted(name for name in found if not is_internal(name))]


def page_path(module: str) -> str:
    """Where a module's page lives in the site's sources."""
    return f"reference/{module}.md"


def page_title(module: str) -> str:
    """The module's name without the package, short enough for the sidebar."""
    return module.removeprefix(PACKAGE + ".") if module != PACKAGE else PACKAGE
