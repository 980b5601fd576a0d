"""Every limit on what ignite-mnist reads from files it did not write in this run (and on what the digit pad
takes from its clients), in one place.

Files users share are untrusted input (see docs/security.md): run directories,
checkpoints, ``config.json``, ``--config`` files, sweep files, exported models and
image folders. Before a parser sees one it must be a regular file (not a device,
a pipe or a folder) under its size limit (:mod:`ignite_mnist.storage.reader`, the one
reader, checks both), and what a YAML file expands to (aliases included) is counted
before it is used. The limits are far above what ignite-mnist itself writes: a
settings file is about 2 KB, a metrics log about 200 bytes a row, a checkpoint
1-5 MB, an exported model under 2 MB. An image's limits are checked from its header
before it is decoded (:func:`ignite_mnist.data.preprocess.check_image_size`).

Example:
    >>> count_nodes({"a": [1, 2, [3]]}, MAX_YAML_NODES)  # the dict, "a", the list, 1, 2, [3], 3
    7
    >>> MAX_METRICS_LOG_BYTES // MAX_METRICS_LINE_BYTES
    256
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "MAX_CHECKPOINT_BYTES",
    "MAX_CLASSES",
    "MAX_DRAWING_BYTES",
    "MAX_DRAWING_PIXELS",
    "MAX_EXPORTED_BYTES",
    "MAX_GRID_POINTS",
    "MAX_IMAGE_ASPECT",
    "MAX_IMAGE_BYTES",
    "MAX_IMAGE_PIXELS",
    "MAX_IMAGE_SIDE",
    "MAX_METRICS_LINE_BYTES",
    "MAX_METRICS_LOG_BYTES",
    "MAX_PAD_CONNECTIONS",
    "MAX_PROCESSES",
    "MAX_SETTINGS_FILE_BYTES",
    "MAX_SWEEP_VALUES",
    "MAX_THREADS",
    "MAX_WORKERS",
    "MAX_YAML_NODES",
    "PAD_REQUEST_SECONDS",
    "count_nodes",
]

#: Bytes a settings file may have (1 MiB): a ``--config`` file, a sweep file, a run's ``config.json`` and
#: ``summary.json``, a sweep folder's ``sweep.yaml`` and ``sweep.json``, an exported model's sidecar.
MAX_SETTINGS_FILE_BYTES = 1 << 20
#: Bytes a run's ``metrics.jsonl`` may have (16 MiB: 100,000 rows of 165 bytes, a run validating 10 times an
#: epoch for 10,000 epochs). A row read costs several times its bytes in Python objects, so this bounds what
#: ``compare``, the plots and ``--resume`` spend on one log: 99 MB for 16 MiB of real rows, 249 MB for 16 MiB
#: of the smallest rows there are (``{"iteration": 1}``); see docs/security.md.
MAX_METRICS_LOG_BYTES = 16 << 20
#: Bytes one line of ``metrics.jsonl`` may have (64 KiB; a row is ~200 bytes): a longer line is not a row (skipped,
#: as a torn line is), so no JSON parser sees a 16 MiB line nested 16 million deep.
MAX_METRICS_LINE_BYTES = 64 << 10
#: Bytes a checkpoint (``*.pt``) may have before ``torch.load`` reads it (1 GiB; this project's models' are 1-5 MB,
#: a model of your own with Adam's moments ~3 times its weights). ``torch.load`` holds the whole file in memory.
MAX_CHECKPOINT_BYTES = 1 << 30
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

# Images (``predict``, image folders, the digit pad): a header over these is refused before anything is decoded,
# so one image costs at most about 0.3 GB and 1.3 s (a 50-megapixel progressive JPEG; docs/security.md, "Images").
#: Bytes an image file may have (64 MiB): a digit needs a few kilobytes; uncompressed 50 megapixels in grey is 48 MiB.
MAX_IMAGE_BYTES = 64 << 20
#: Pixels an image may have (width x height): a 50-megapixel phone photo fits.
MAX_IMAGE_PIXELS = 50_000_000
#: Pixels its longer side may have.
MAX_IMAGE_SIDE = 10_000
#: How many times longer than its shorter side its longer side may be (a 1x50,000,000 strip decodes row by row).
MAX_IMAGE_ASPECT = 20

# The digit pad (``ignite-mnist demo``): its page posts a 280x280 PNG of a few kilobytes.
#: Bytes a posted drawing may have (2 MiB).
MAX_DRAWING_BYTES = 2 << 20
#: Pixels a posted drawing may have (1024x1024; the page's are 280x280): one costs at most about 0.1 s to read.
MAX_DRAWING_PIXELS = 1024 * 1024
#: Seconds a client has to send its whole request (headers and body) once connected; then it is cut off.
PAD_REQUEST_SECONDS = 10
#: Connections served at once; more are answered 503 at once (each holds a thread and up to a drawing's bytes).
MAX_PAD_CONNECTIONS = 64


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
