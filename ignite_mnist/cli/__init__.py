"""The command line: ``ignite-mnist``, ``python -m ignite_mnist`` and ``examples/train_mnist.py``.

``train`` (the default command) is :mod:`ignite_mnist.cli.train`; ``evaluate``,
``predict`` and ``export`` are :mod:`ignite_mnist.cli.inference`; :mod:`ignite_mnist.cli.commands`
dispatches. The training flags are parsed by :mod:`ignite_mnist.settings.config_args`, in the library
(which never imports this package). Errors the user can fix end in one line and an exit code (see
:mod:`ignite_mnist.errors`): 0 done, 1 runtime failure, 2 usage error, 130/143
interrupted. Nothing here imports torch before a command needs it, so ``--help``
and usage errors answer at once. The names below are imported on first use.
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "COMMANDS": "ignite_mnist.cli.commands",
    "main": "ignite_mnist.cli.commands",
    "build_train_parser": "ignite_mnist.settings.config_args",
    "parse_train_args": "ignite_mnist.settings.config_args",
    "train_parser": "ignite_mnist.cli.train",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'ignite_mnist.cli' has no attribute {name!r}")
