"""Every limit on what ignite-mnist reads from files it did not write in this run, in one place.

Files users share are untrusted input (see docs/security.md): run directories,
checkpoints, ``config.json``, ``--config`` files, sweep files, exported models and
image folders. Before a parser sees one it must be a regular file (not a device,
a pipe or a folder) under its size limit, and what a YAML file expands to
(aliases included) is counted before it is used. The limits are far above what
ignite-mnist itself writes: a settings file is about 2 KB, a checkpoint 1-5 MB,
an exported model under 2 MB.

Example:
    >>> import tempfile
    >>> path = Path(tempfile.mkdtemp()) / "run.yaml"
    >>> _ = path.write_text("epochs: 3\\n")
    >>> read_bounded(path, MAX_SETTINGS_FILE_BYTES)
    b'epochs: 3\\n'
    >>> read_bounded("/dev/zero", MAX_SETTINGS_FILE_BYTES)
    Traceback (most recent call last):
    ...
    ValueError: not a regular file (a device, a pipe or a folder)
    >>> count_nodes({"a": [1, 2, [3]]}, MAX_YAML_NODES)  # the dict, "a", the list, 1, 2, [3], 3
    7
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

__all__ = [
    "MAX_CLASSES",
    "MAX_EXPORTED_BYTES",
    "MAX_GRID_POINTS",
    "MAX_PROCESSES",
    "MAX_SETTINGS_FILE_BYTES",
    "MAX_SWEEP_VALUES",
    "MAX_THREADS",
    "MAX_WORKERS",
    "MAX_YAML_NODES",
    "check_regular_file",
    "count_nodes",
    "read_bounded",
]

#: Bytes a ``--config`` file or a sweep file may have (1 MiB).
MAX_SETTINGS_FILE_BYTES = 1 << 20
#: Values a YAML settings or sweep file may hold once its aliases are expanded.
MAX_YAML_NODES = 100_000
#: Bytes an exported model file (``.onnx``, ``.pte``, ``.torchscript.pt``) may have before a runtime reads it (256 MiB).
MAX_EXPORTED_BYTES = 256 << 20
#: Points a grid sweep may have (the product of its parameters' value counts), computed before Optuna lists them.
MAX_GRID_POINTS = 10_000
#: Values one sweep parameter may list.
MAX_SWEEP_VALUES = 1000
#: Classes a dataset (a checkpoint's or an exported file's ``dataset`` entry, an image folder) may have.
MAX_CLASSES = 1000
#: ``--nproc-per-node``, ``--num-workers`` and ``--threads`` at most (a file could otherwise start any number).
MAX_PROCESSES = 64
MAX_WORKERS = 64
MAX_THREADS = 256


def check_regular_file(path: str | Path, limit: int) -> int:
    """The size of ``path``, a regular file (symlinks followed) of at most ``limit`` bytes.

    Raises:
        OSError: it cannot be looked at (missing, no permission).
        ValueError: a device, pipe or folder, or too big; the message says which.
    """
    info = os.stat(path)
    if not stat.S_ISREG(info.st_mode):
        raise ValueError("not a regular file (a device, a pipe or a folder)")
    if info.st_size > limit:
        raise ValueError(f"{info.st_size} bytes, more than the limit of {limit}")
    return info.st_size


def read_bounded(path: str | Path, limit: int) -> bytes:
    """The bytes of a regular file of at most ``limit`` bytes (checked before and while reading).

    Raises:
        OSError: it cannot be read.
        ValueError: not a regular file, or bigger than ``limit``.
    """
    check_regular_file(path, limit)
    with open(path, "rb") as handle:
        data = handle.read(limit + 1)
    if len(data) > limit:  # it grew after the check
        raise ValueError(f"more than the limit of {limit} bytes")
    return data


def count_nodes(value: Any, limit: int) -> int:
    """How many values ``value`` holds (itself, and every key and item, nested), counting a shared one (a YAML
    alias) each time it appears, as a JSON copy would.

    Raises:
        ValueError: more than ``limit`` (a YAML "billion laughs" file expands to billions).
    """
    count, pending = 0, [value]
    while pending:
        item = pending.pop()
        count += 1
        if count > limit:
            raise ValueError(f"holds more than {limit} values (once its aliases are expanded)")
        if isinstance(item, dict):
            pending.extend(item.keys())
            pending.extend(item.values())
        elif isinstance(item, (list, tuple)):
            pending.extend(item)
    return count
