"""Use a trained model: load a checkpoint, evaluate it on the test set, classify image files.

A checkpoint is the plain dict ``training.run`` writes (``model`` state_dict and
``config`` among other states), read with ``weights_only=True`` by
:func:`ignite_mnist.handlers.checkpoint.load_checkpoint`, so a file carrying
pickled code is refused. Evaluation is Ignite's evaluator with its
``Accuracy``, ``Loss`` and ``ConfusionMatrix`` metrics
(:func:`ignite_mnist.engines.create_evaluator`); the per-class accuracy is the
confusion matrix's diagonal over its row sums. Image preprocessing lives in
:mod:`ignite_mnist.preprocess`, export in :mod:`ignite_mnist.export`.

Example:
    >>> loaded = load_model("runs/mnist-cnn-20261125-101500")  # doctest: +SKIP
    >>> evaluate(loaded).accuracy  # doctest: +SKIP
    0.9895
    >>> predict(loaded, ["seven.png"])[0].label  # doctest: +SKIP
    '7'
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ignite_mnist.config import TrainConfig
from ignite_mnist.data import DATASETS, DatasetSpec, TensorLoader, load_split_tensors
from ignite_mnist.engines import create_evaluator
from ignite_mnist.errors import CheckpointError, ConfigError, IgniteMnistError
from ignite_mnist.handlers.checkpoint import find_latest_checkpoint, load_checkpoint
from ignite_mnist.models import build_model
from ignite_mnist.preprocess import preprocess_image

__all__ = [
    "Evaluation",
    "LoadedModel",
    "Prediction",
    "default_output_path",
    "evaluate",
    "load_model",
    "predict",
    "predict_tensors",
    "resolve_checkpoint",
]

EVAL_BATCH_SIZE = 1000
CHECKPOINT_DIR = "checkpoints"  # where training.run keeps a run's checkpoints


def resolve_checkpoint(path: str | Path) -> Path:
    """A checkpoint file, or a run directory -> the checkpoint file to use.

    For a run directory: the ``best_checkpoint`` of its ``summary.json``, else the
    newest "last" checkpoint in ``<run_dir>/checkpoints/``.

    Raises:
        CheckpointError: a directory without any checkpoint.

    Example:
        >>> resolve_checkpoint("runs/demo")  # doctest: +SKIP
        PosixPath('runs/demo/checkpoints/best_checkpoint_3438_accuracy=0.9712.pt')
    """
    path = Path(path)
    if not path.is_dir():
        return path
    summary = path / "summary.json"
    if summary.is_file():
        try:
            best = json.loads(summary.read_text()).get("best_checkpoint")
        except (ValueError, AttributeError):
            best = None
        if best and Path(best).is_file():
            return Path(best)
    latest = find_latest_checkpoint(path / CHECKPOINT_DIR)
    if latest is None:
        raise CheckpointError(f"{path}: a directory without checkpoints; pass a .pt file or a run directory")
    return latest


def default_output_path(checkpoint: Path, suffix: str) -> Path:
    """Where a file derived from a checkpoint goes by default: the run directory, named after it.

    Example:
        >>> default_output_path(Path("runs/a/checkpoints/best_checkpoint_9_accuracy=0.9.pt"), ".onnx")
        PosixPath('runs/a/best_checkpoint_9_accuracy=0.9.onnx')
    """
    folder = checkpoint.parent.parent if checkpoint.parent.name == CHECKPOINT_DIR else checkpoint.parent
    return folder / (checkpoint.name.removesuffix(".pt") + suffix)


@dataclass
class LoadedModel:
    """A model restored from a checkpoint, in eval mode, with what it was trained on."""

    model: nn.Module
    config: TrainConfig
    spec: DatasetSpec
    path: Path

    @property
    def classes(self) -> tuple[str, ...]:
        return self.spec.classes


def load_model(path: str | Path, device: torch.device | str = "cpu") -> LoadedModel:
    """Restore the model of a checkpoint file or run directory, ready for inference.

    Raises:
        CheckpointError: missing, corrupt or unsafe file, or weights that do not fit
            the model its config names.

    Example:
        >>> loaded = load_model("runs/demo/checkpoints/last_checkpoint_1719.pt")  # doctest: +SKIP
        >>> loaded.config.model, type(loaded.model).__name__  # doctest: +SKIP
        ('mlp', 'TutorialMLP')
    """
    path = resolve_checkpoint(path)
    checkpoint = load_checkpoint(path)
    try:
        config = TrainConfig.from_dict(dict(checkpoint["config"]))
        config.validate()
    except (ConfigError, TypeError, ValueError) as error:
        raise CheckpointError(f"{path}: its config does not fit this version of ignite-mnist ({error})") from None
    spec = DATASETS[config.dataset]
    model = build_model(config.model, len(spec.classes))
    try:
        model.load_state_dict(checkpoint["model"])
    except (RuntimeError, TypeError, AttributeError) as error:
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise CheckpointError(f"{path}: its weights do not fit the {config.model!r} model ({first})") from None
    return LoadedModel(model.to(device).eval(), config, spec, path)


@dataclass
class Evaluation:
    """Test-set results of one model."""

    accuracy: float
    loss: float
    per_class_accuracy: list[float]
    confusion_matrix: list[list[int]]  # rows: true class, columns: predicted class
    classes: tuple[str, ...]
    samples: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "accuracy": self.accuracy, "loss": self.loss, "samples": self.samples,
            "per_class_accuracy": dict(zip(self.classes, self.per_class_accuracy)),
            "confusion_matrix": self.confusion_matrix, "classes": list(self.classes),
        }

    def format(self) -> str:
        """A plain-text report: totals, per-class accuracy and the confusion matrix."""
        names = [name[:9] for name in self.classes]
        width = max(6, *(len(n) for n in names), len(str(max(max(row) for row in self.confusion_matrix))))
        lines = [
            f"test accuracy {self.accuracy * 100:.2f} % ({self.samples} images), loss {self.loss:.4f}",
            "",
            "per-class accuracy:",
            *(f"  {name:>{width}}  {acc * 100:6.2f} %" for name, acc in zip(names, self.per_class_accuracy)),
            "",
            "confusion matrix (rows: true class, columns: predicted):",
            " " * (width + 2) + " ".join(f"{n:>{width}}" for n in names),
            *(
                f"{name:>{width}}  " + " ".join(f"{count:>{width}}" for count in row)
                for name, row in zip(names, self.confusion_matrix)
            ),
        ]
        return "\n".join(lines)


def evaluation_from_confusion(matrix: torch.Tensor, loss: float, classes: tuple[str, ...]) -> Evaluation:
    """Accuracy, per-class accuracy and counts from a confusion matrix (rows = true class)."""
    matrix = matrix.long().cpu()
    per_class = matrix.diag().float() / matrix.sum(1).clamp(min=1).float()
    total = int(matrix.sum())
    return Evaluation(
        accuracy=float(matrix.diag().sum()) / max(total, 1), loss=loss,
        per_class_accuracy=[round(float(v), 6) for v in per_class], confusion_matrix=matrix.tolist(),
        classes=classes, samples=total,
    )


def evaluate(loaded: LoadedModel, data_dir: str | Path | None = None, device: torch.device | str = "cpu") -> Evaluation:
    """Test accuracy, loss, per-class accuracy and confusion matrix of a loaded model.

    Args:
        loaded: from :func:`load_model`.
        data_dir: dataset root; default the one the run was trained with.
        device: where to evaluate.

    Example:
        >>> print(evaluate(load_model("runs/demo")).format())  # doctest: +SKIP
        test accuracy 97.12 % (10000 images), loss 0.0951
        ...
    """
    images, labels = load_split_tensors(data_dir or loaded.config.data_dir, loaded.config.dataset, train=False)
    spec = loaded.spec
    loader = TensorLoader(images, labels, EVAL_BATCH_SIZE, mean=spec.mean, std=spec.std, device=device)
    evaluator = create_evaluator(loaded.model.to(device), device, num_classes=len(spec.classes), confusion_matrix=True)
    metrics = evaluator.run(loader).metrics
    return evaluation_from_confusion(metrics["confusion_matrix"], float(metrics["loss"]), spec.classes)


def predict_tensors(model: nn.Module, images: torch.Tensor, batch_size: int = EVAL_BATCH_SIZE) -> torch.Tensor:
    """Class probabilities ``(N, classes)`` for normalised ``(N, 1, 28, 28)`` inputs.

    Example:
        >>> probabilities = predict_tensors(build_model("mlp").eval(), torch.zeros(3, 1, 28, 28))
        >>> probabilities.shape, bool(torch.allclose(probabilities.sum(1), torch.ones(3)))
        (torch.Size([3, 10]), True)
    """
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    with torch.inference_mode():
        parts = [model(images[i : i + batch_size].to(device)).softmax(1).cpu() for i in range(0, len(images), batch_size)]
    model.train(was_training)
    return torch.cat(parts) if parts else torch.empty(0, 0)


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


def predict(loaded: LoadedModel, paths: Iterable[str | Path]) -> list[Prediction]:
    """Classify image files; a file that cannot be read gets a :class:`Prediction` with ``error`` set.

    Every image is preprocessed as described in :mod:`ignite_mnist.preprocess`.

    Example:
        >>> [p.label for p in predict(load_model("runs/demo"), ["a.png", "b.jpg"])]  # doctest: +SKIP
        ['7', '2']
    """
    results: list[Prediction] = []
    inputs: list[torch.Tensor] = []
    for path in paths:
        try:
            inputs.append(preprocess_image(path, mean=loaded.spec.mean, std=loaded.spec.std))
            results.append(Prediction(str(path)))
        except IgniteMnistError as error:
            results.append(Prediction(str(path), error=str(error)))
    if inputs:
        probabilities = predict_tensors(loaded.model, torch.stack(inputs))
        best, indices = probabilities.max(1)
        readable = [r for r in results if r.error is None]
        for result, index, probability in zip(readable, indices.tolist(), best.tolist()):
            result.index, result.label, result.probability = index, loaded.classes[index], round(probability, 6)
    return results
