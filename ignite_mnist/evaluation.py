"""The test set, evaluated once: metrics, confusion matrix and misclassified examples in one pass.

Ignite supplies the evaluation (``create_supervised_evaluator`` with its
``Accuracy``, ``Loss`` and ``ConfusionMatrix``, all reduced over ranks in a
distributed run). Added here: the first :data:`MISCLASSIFIED_KEPT` wrong
predictions are collected while the evaluator runs, and the result is one
:class:`Evaluation` that the summary, the plots, every tracker and the
``evaluate`` command all read, so the test data is never predicted twice.
:class:`Evaluation` itself is plain numbers and numpy (so is :func:`evaluation_from_confusion`):
an exported model's evaluation (:func:`ignite_mnist.inference.exported.evaluate_exported`)
and the plots make one without torch; torch and Ignite are imported when :func:`evaluate_model` runs.

Example:
    >>> import torch
    >>> from ignite_mnist.data import MNIST, DatasetInfo
    >>> model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(784, 10))
    >>> batches = [(torch.randn(8, 1, 28, 28), torch.arange(8))]
    >>> evaluation = evaluate_model(model, batches, DatasetInfo.of(MNIST))
    >>> evaluation.samples, len(evaluation.confusion_matrix)
    (8, 10)
    >>> len(evaluation.misclassified) == 8 - sum(evaluation.confusion_matrix[i][i] for i in range(10))
    True
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

import numpy as np

if TYPE_CHECKING:
    import torch
    from ignite.engine import Engine
    from torch import nn

    from ignite_mnist.data import DatasetInfo

__all__ = ["MISCLASSIFIED_KEPT", "Evaluation", "Misclassified", "evaluate_model", "evaluation_from_confusion"]

#: How many misclassified test images a report keeps (the plot's 6x6 grid, the W&B table).
MISCLASSIFIED_KEPT = 36


@dataclass
class Misclassified:
    """One wrong prediction: the image as the model saw it, mapped back to 0-1, and what it said."""

    image: np.ndarray  # float32 (28, 28) in 0-1
    label: int
    prediction: int
    confidence: float


@dataclass
class Evaluation:
    """Test-set results of one model."""

    accuracy: float
    loss: float
    per_class_accuracy: list[float]
    confusion_matrix: list[list[int]]  # rows: true class, columns: predicted class
    classes: tuple[str, ...]
    samples: int
    misclassified: list[Misclassified] = field(default_factory=list)

    @property
    def wrong(self) -> int:
        """How many test images were misclassified (all of them, not only the ones kept)."""
        return self.samples - sum(self.confusion_matrix[i][i] for i in range(len(self.classes)))

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON values (a NaN loss, from NaN weights, becomes ``None``: JSON has no NaN)."""
        return {
            "accuracy": self.accuracy, "loss": self.loss if math.isfinite(self.loss) else None, "samples": self.samples,
            "per_class_accuracy": dict(zip(self.classes, self.per_class_accuracy, strict=True)),
            "confusion_matrix": self.confusion_matrix, "classes": list(self.classes),
        }

    def format(self) -> str:
        """A plain-text report: totals, per-class accuracy and the confusion matrix.

        Example:
            >>> print(evaluation_from_confusion([[3, 1], [0, 4]], 0.25, ("cat", "dog")).format())
            test accuracy 87.50 % (8 images), loss 0.2500
            <BLANKLINE>
            per-class accuracy:
                 cat   75.00 %
                 dog  100.00 %
            <BLANKLINE>
            confusion matrix (rows: true class, columns: predicted):
                       cat    dog
               cat       3      1
               dog       0      4
        """
        names = list(self.classes)
        width = max(6, *(len(n) for n in names), len(str(max(max(row) for row in self.confusion_matrix))))
        return "\n".join([
            f"test accuracy {self.accuracy * 100:.2f} % ({self.samples} images), loss {self.loss:.4f}",
            "",
            "per-class accuracy:",
            *(f"  {name:>{width}}  {acc * 100:6.2f} %"
              for name, acc in zip(names, self.per_class_accuracy, strict=True)),
            "",
            "confusion matrix (rows: true class, columns: predicted):",
            " " * (width + 2) + " ".join(f"{n:>{width}}" for n in names),
            *(f"{name:>{width}}  " + " ".join(f"{count:>{width}}" for count in row)
              for name, row in zip(names, self.confusion_matrix, strict=True)),
        ])


def evaluation_from_confusion(
    matrix: Any, loss: float, classes: tuple[str, ...], misclassified: list[Misclassified] | None = None
) -> Evaluation:
    """Accuracy, per-class accuracy and counts from a confusion matrix (rows = true class; a nested list, a numpy
    array or a CPU tensor)."""
    matrix = np.asarray(matrix).astype(np.int64)
    per_class = np.diag(matrix) / np.maximum(matrix.sum(1), 1)
    total = int(matrix.sum())
    return Evaluation(
        accuracy=float(np.trace(matrix)) / max(total, 1), loss=loss,
        per_class_accuracy=[round(float(v), 6) for v in per_class], confusion_matrix=matrix.tolist(),
        classes=tuple(classes), samples=total, misclassified=list(misclassified or []),
    )


def _collect_misclassified(evaluator: Engine, spec: DatasetInfo, kept: list[Misclassified]) -> None:
    import torch
    from ignite.engine import Events

    def collect(engine: Engine) -> None:
        if len(kept) >= MISCLASSIFIED_KEPT:
            return
        logits, labels = cast(tuple[torch.Tensor, torch.Tensor], engine.state.output)  # Ignite types it an int
        confidence, predicted = torch.softmax(logits.detach().float(), dim=1).max(dim=1)
        images = cast(tuple[torch.Tensor, torch.Tensor], engine.state.batch)[0]
        for i in (predicted != labels).nonzero().flatten()[: MISCLASSIFIED_KEPT - len(kept)].tolist():
            image = (images[i].detach().float().cpu().reshape(28, 28) * spec.std + spec.mean).clamp(0, 1)
            kept.append(Misclassified(image.numpy(), int(labels[i]), int(predicted[i]), float(confidence[i])))

    evaluator.add_event_handler(Events.ITERATION_COMPLETED, collect)


def evaluate_model(
    model: nn.Module, batches: Iterable[Any], spec: DatasetInfo, device: torch.device | str | None = None
) -> Evaluation:
    """Evaluate ``model`` on normalised ``(images, labels)`` batches of the dataset ``spec`` describes, in one pass.

    In a distributed run every rank passes its shard: the metrics cover all of
    them, the misclassified examples this rank's.
    """
    from ignite_mnist.engines import create_evaluator

    evaluator = create_evaluator(model, device, num_classes=len(spec.classes), confusion_matrix=True)
    kept: list[Misclassified] = []
    _collect_misclassified(evaluator, spec, kept)
    metrics = evaluator.run(batches).metrics
    return evaluation_from_confusion(metrics["confusion_matrix"].cpu(), float(metrics["loss"]), spec.classes, kept)
