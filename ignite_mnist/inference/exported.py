"""An exported model file in use: what it says about itself, its class probabilities, its test accuracy.

:func:`load_exported` reads a file ``ignite-mnist export`` wrote (ONNX, TorchScript or
ExecuTorch: :data:`ignite_mnist.registry.EXPORT_FORMATS`, each an
:class:`~ignite_mnist.inference.formats.ExportFormat`) and its metadata: the copy inside the
file, else its sidecar ``<file>.json`` (:func:`~ignite_mnist.inference.formats.sidecar_path`).
The :class:`ExportedModel` it returns answers :func:`ignite_mnist.inference.classify.predict`
and the digit pad, and :func:`evaluate_exported` measures it on a test set.

Everything here is numpy, and so is what each format runs: an ONNX file runs in
ONNX Runtime on numpy arrays, so ``predict``, ``evaluate`` and ``demo`` on an
``.onnx`` file import neither torch, torchvision nor Ignite (``tests/inference/test_light_paths.py``
holds them to it). A TorchScript file needs torch to run; an ExecuTorch file needs
executorch's Python runtime, whose pip wheel links libtorch and imports torch itself
(executorch 1.5.1), so a ``.pte`` file loads torch too (still not torchvision or Ignite).
The writing side (torch's exporters, the check against the eager model) is
:mod:`ignite_mnist.inference.export`.

What every format shares (:class:`~ignite_mnist.inference.formats.ExportFormat`, the
sidecar's path) is :mod:`ignite_mnist.inference.formats`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ignite_mnist.data.datasets import DatasetInfo, dataset_spec, load_split_arrays
from ignite_mnist.errors import IgniteMnistError, UnsafeFileError, first_line
from ignite_mnist.evaluation import MISCLASSIFIED_KEPT, Evaluation, Misclassified, evaluation_from_confusion
from ignite_mnist.inference.formats import ExportError, ExportFormat, sidecar_path
from ignite_mnist.limits import MAX_EXPORTED_BYTES, MAX_SETTINGS_FILE_BYTES
from ignite_mnist.registry import EXPORT_FORMATS
from ignite_mnist.storage.reader import check_file, read_json, size_text

__all__ = ["ExportedModel", "evaluate_exported", "is_exported", "load_exported"]

def _softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    probabilities: np.ndarray = shifted / shifted.sum(axis=1, keepdims=True)
    return probabilities


@dataclass
class ExportedModel:
    """An exported file with what its metadata says, ready for :func:`ignite_mnist.inference.classify.predict`."""

    path: Path
    format: str
    metadata: dict[str, Any]
    spec: DatasetInfo

    @property
    def classes(self) -> tuple[str, ...]:
        return self.spec.classes

    def logits(self, images: np.ndarray) -> np.ndarray:
        """The file's logits ``(N, classes)`` for normalised ``float32 (N, 1, 28, 28)`` inputs, run by its runtime."""
        exporter: ExportFormat = EXPORT_FORMATS.load(self.format)
        return exporter.run(self.path, np.ascontiguousarray(images, dtype=np.float32))

    def probabilities(self, images: np.ndarray) -> np.ndarray:
        """Class probabilities ``(N, classes)`` for normalised ``float32 (N, 1, 28, 28)`` inputs."""
        return _softmax(self.logits(images).astype(np.float64)).astype(np.float32)


def _format_by_suffix(path: Path) -> str | None:
    return next((name for name in EXPORT_FORMATS if path.name.endswith(EXPORT_FORMATS.load(name).suffix)), None)


def is_exported(path: str | Path) -> bool:
    """Whether ``path`` is an exported model file (it has a sidecar, or a format's suffix) rather than a checkpoint.

    Example:
        >>> is_exported("runs/a/best.pte"), is_exported("runs/a/checkpoints/best.pt"), is_exported("runs/a")
        (True, False, False)
    """
    path = Path(path)
    return sidecar_path(path).is_file() or _format_by_suffix(path) is not None


def _read_sidecar(path: Path) -> dict[str, Any] | None:
    sidecar = sidecar_path(path)
    if not sidecar.is_file():
        return None
    try:
        values = read_json(sidecar, MAX_SETTINGS_FILE_BYTES)
    except (OSError, ValueError, UnsafeFileError) as error:
        reason = error.reason if isinstance(error, UnsafeFileError) else first_line(error)
        raise ExportError(f"{sidecar}: not a readable sidecar ({reason}); export the model again") from None
    if not isinstance(values, dict):
        raise ExportError(f"{sidecar}: not a sidecar of ignite-mnist export; export the model again")
    return values


def _readable_format(path: Path, sidecar: dict[str, Any] | None) -> ExportFormat:
    """The file's format (the sidecar's, else the one its name ends in), once its runtime is there."""
    format = str(sidecar.get("format")) if sidecar is not None else _format_by_suffix(path)
    if format is None or format not in EXPORT_FORMATS:
        raise ExportError(f"{path}: cannot tell its format (a sidecar or a name ending in "
                          f"{', '.join(EXPORT_FORMATS.load(name).suffix for name in EXPORT_FORMATS)})")
    exporter: ExportFormat = EXPORT_FORMATS.load(format)
    exporter.require_runtime()
    return exporter


def load_exported(path: str | Path) -> ExportedModel:
    """An exported file and its metadata (the copy inside the file, else its sidecar's).

    The format is the sidecar's, else the one whose suffix the file name has.

    Raises:
        ExportError: missing file, unknown format, a file its runtime cannot read, or no metadata.
    """
    path = Path(path)
    if not path.is_file():
        raise ExportError(f"{path}: no such exported model file; check the path")
    sidecar = _read_sidecar(path)
    exporter = _readable_format(path, sidecar)
    try:
        check_file(path, MAX_EXPORTED_BYTES)
    except UnsafeFileError as error:
        raise ExportError(f"{path}: refused: {error.reason} (an exported model is a regular file of at most "
                          f"{size_text(MAX_EXPORTED_BYTES)})") from None
    exporter.check_file(path)
    try:
        inside = exporter.read_metadata(path)
        values = json.loads(inside) if inside else sidecar
    except IgniteMnistError:
        raise
    except Exception as error:  # noqa: BLE001 - each runtime has its own errors for a damaged file
        raise ExportError(f"{path}: the {exporter.name} runtime cannot read it ({first_line(error)})") from None
    if not isinstance(values, dict) or not isinstance(values.get("dataset"), dict):
        raise ExportError(f"{path}: holds no ignite-mnist metadata and has no sidecar; "
                          "export it with ignite-mnist export")
    try:
        return ExportedModel(path, exporter.name, values, DatasetInfo.from_dict(values["dataset"]))
    except ValueError as error:
        raise ExportError(f"{path}: its metadata's {error}; export the model again") from None


def _test_set(model: ExportedModel, data_dir: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """The raw test images and labels of the dataset the file's metadata names, whose classes must be the file's."""
    dataset = dataset_spec(model.spec.name)
    if tuple(dataset.classes) != model.classes:
        raise ExportError(f"{model.path}: its classes ({', '.join(model.classes)}) are not those of the "
                          f"{model.spec.name} dataset; the file is damaged or was not written by ignite-mnist")
    return load_split_arrays(data_dir, model.spec.name, train=False)


def _misclassified(images: np.ndarray, labels: np.ndarray, probabilities: np.ndarray) -> list[Misclassified]:
    """The first :data:`~ignite_mnist.evaluation.MISCLASSIFIED_KEPT` wrong answers, each image in 0-1."""
    predicted = probabilities.argmax(1)
    wrong = np.flatnonzero(predicted != labels)[:MISCLASSIFIED_KEPT]
    return [Misclassified(images[i].astype(np.float32) / 255, int(labels[i]), int(predicted[i]),
                          float(probabilities[i, predicted[i]])) for i in wrong]


def evaluate_exported(model: ExportedModel, data_dir: str | Path) -> Evaluation:
    """Test accuracy, loss, per-class accuracy, confusion matrix and misclassified images of an exported file,
    on the test split of the dataset its metadata names (under ``data_dir``), run by the file's own runtime.

    The same numbers as :func:`ignite_mnist.evaluation.evaluate_model` computes for a model in torch (the
    mean cross-entropy, the confusion matrix with rows as true classes), here in numpy.

    Raises:
        DataError: the test files are missing or damaged.
        ExportError: the file's classes are not those of the dataset it names.
    """
    images, labels = _test_set(model, data_dir)
    mean, std = np.float32(model.spec.mean), np.float32(model.spec.std)
    inputs = ((images.astype(np.float32) / 255 - mean) / std)[:, None]
    logits = model.logits(inputs).astype(np.float64)  # the runtime takes them in chunks it accepts
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_probabilities = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    loss = float(-log_probabilities[np.arange(len(labels)), labels].mean()) if len(labels) else float("nan")
    classes = len(model.classes)
    confusion = np.bincount(labels * classes + logits.argmax(1), minlength=classes * classes)
    return evaluation_from_confusion(confusion.reshape(classes, classes), loss, model.classes,
                                     _misclassified(images, labels, np.exp(log_probabilities)))
