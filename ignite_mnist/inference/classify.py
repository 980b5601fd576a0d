"""Classify image files with any model: a checkpoint's (:class:`~ignite_mnist.inference.trained.LoadedModel`)
or an exported file's (:class:`~ignite_mnist.inference.exported.ExportedModel`).

What ``predict`` and the digit pad share: every image goes through
:func:`ignite_mnist.data.preprocess.preprocess_image` with the model's normalisation,
and the model answers class probabilities for the stacked numpy batch. Nothing here
imports torch: with an exported ONNX file, ``predict`` runs on numpy and ONNX Runtime alone.

Example:
    >>> class Uniform:  # any Classifier: here one that cannot tell digits apart
    ...     spec = DatasetInfo("mnist", tuple("0123456789"), 0.1307, 0.3081)
    ...     classes = spec.classes
    ...     def probabilities(self, images):
    ...         return np.full((len(images), 10), 0.1, dtype=np.float32)
    >>> found, missing = predict(Uniform(), [digit_png, "missing.png"])
    >>> found.label, found.probability, missing.error
    ('0', 0.1, 'missing.png: no such file')
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from ignite_mnist.data.datasets import DatasetInfo
from ignite_mnist.data.preprocess import preprocess_image
from ignite_mnist.errors import IgniteMnistError

__all__ = ["Classifier", "Prediction", "predict"]


class Classifier(Protocol):
    """What :func:`predict` and the digit pad need: a checkpoint's model or an exported file."""

    @property
    def spec(self) -> DatasetInfo: ...

    @property
    def classes(self) -> tuple[str, ...]: ...

    def probabilities(self, images: np.ndarray) -> np.ndarray:
        """Class probabilities ``(N, classes)`` for normalised ``float32 (N, 1, 28, 28)`` inputs."""
        ...


@dataclass
class Prediction:
    """The class of one image file, or why it could not be classified."""

    file: str
    index: int | None = None
    label: str | None = None
    probability: float | None = None
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        if self.error is not None:
            return {"file": self.file, "error": self.error}
        return {"file": self.file, "prediction": self.index, "label": self.label, "probability": self.probability}


def predict(loaded: Classifier, paths: Iterable[str | Path]) -> list[Prediction]:
    """Classify image files; a file that cannot be read gets a :class:`Prediction` with ``error`` set.

    Every image is preprocessed as described in :mod:`ignite_mnist.data.preprocess`, with the
    normalisation of ``loaded`` (a checkpoint's model, or an exported file's metadata).
    """
    results: list[Prediction] = []
    inputs: list[np.ndarray] = []
    for path in paths:
        try:
            inputs.append(preprocess_image(path, mean=loaded.spec.mean, std=loaded.spec.std))
            results.append(Prediction(str(path)))
        except IgniteMnistError as error:
            results.append(Prediction(str(path), error=str(error)))
    if inputs:
        probabilities = np.asarray(loaded.probabilities(np.stack(inputs)))
        readable = [r for r in results if r.error is None]
        for result, row in zip(readable, probabilities, strict=True):
            index = int(row.argmax())
            probability = float(row[index])
            if not math.isfinite(probability):
                result.error = f"{result.file}: the model's output is not a number (are its weights NaN?)"
                continue
            result.index, result.label, result.probability = index, loaded.classes[index], round(probability, 6)
    return results
