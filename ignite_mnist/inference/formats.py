"""What every export format shares: :class:`ExportFormat` (how a format writes, runs and describes a file),
the metadata's name inside a file, the graphs' input and output names, the sidecar's path, running in chunks.

The formats themselves are :mod:`ignite_mnist.inference.export` (TorchScript, ONNX) and
:mod:`ignite_mnist.inference.executorch`, listed in :data:`ignite_mnist.registry.EXPORT_FORMATS`;
reading a file back is :mod:`ignite_mnist.inference.exported`. This module imports neither
torch nor any format, so every one of them can build on it.

Example:
    >>> sidecar_path("runs/a/best.onnx")
    PosixPath('runs/a/best.onnx.json')
    >>> in_chunks(lambda batch: batch * 2, np.arange(5.0), size=2).tolist()
    [0.0, 2.0, 4.0, 6.0, 8.0]
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ignite_mnist.errors import IgniteMnistError

if TYPE_CHECKING:
    import torch
    from torch import nn

__all__ = ["EVAL_BATCH_SIZE", "INPUT_NAME", "METADATA_NAME", "OUTPUT_NAME", "ExportError", "ExportFormat", "in_chunks",
           "sidecar_path"]

#: The name the metadata has inside every exported file (ONNX key, TorchScript extra file, ExecuTorch method).
METADATA_NAME = "ignite_mnist"
#: The input and output names of the exported graphs.
INPUT_NAME, OUTPUT_NAME = "images", "logits"
#: How many images a model is given at once when it runs over a test set or many files.
EVAL_BATCH_SIZE = 1000

Runner = Callable[[np.ndarray], np.ndarray]


class ExportError(IgniteMnistError):
    """The model could not be exported, or the exported file does not match it or cannot be read."""


def in_chunks(run: Runner, images: np.ndarray, size: int = EVAL_BATCH_SIZE) -> np.ndarray:
    """``run`` on ``images`` ``size`` at a time, the outputs concatenated (bounded memory, bounded batches)."""
    return np.concatenate([run(images[start : start + size]) for start in range(0, len(images), size)])


def _nothing_to_require() -> None:
    return None


@dataclass(frozen=True)
class ExportFormat:
    """One ``--format``: how to write a model file (with its metadata JSON), run one, and read the metadata back.

    ``run`` takes normalised ``float32 (N, 1, 28, 28)`` images as a numpy array and returns
    the logits as one. ``save_int8`` (``None`` where the format takes no quantization) writes
    the int8 file, given normalised calibration images. ``require`` raises
    :class:`ExportError` with the install command when the packages that write the format
    are missing, ``require_runtime`` when those that run it are. ``max_batch`` is the
    largest batch a file accepts (``None``: any). ``check_file`` raises :class:`ExportError`
    for a file that is not of the format (its first bytes, its structure), before the runtime reads it.
    """

    name: str
    suffix: str
    save: Callable[[nn.Module, Path, str], None]
    run: Callable[[Path, np.ndarray], np.ndarray]
    read_metadata: Callable[[Path], str | None]
    save_int8: Callable[[nn.Module, Path, str, torch.Tensor], None] | None = None
    require: Callable[[], None] = _nothing_to_require
    require_runtime: Callable[[], None] = _nothing_to_require
    max_batch: int | None = None
    check_file: Callable[[Path], None] = lambda path: None


def sidecar_path(path: str | Path) -> Path:
    """The JSON file beside an exported file."""
    path = Path(path)
    return path.with_name(path.name + ".json")
