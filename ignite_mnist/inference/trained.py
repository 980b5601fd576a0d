"""Use a trained model: load a checkpoint, evaluate it on the test set, classify image files.

A checkpoint is read with :func:`ignite_mnist.storage.checkpoints.load_checkpoint`
(``weights_only=True``: a file carrying pickled code is refused); a run
directory stands for its best checkpoint (:func:`ignite_mnist.storage.run_dir.model_checkpoint`).
Evaluation is :func:`ignite_mnist.evaluation.evaluate_model` (Ignite's evaluator
with ``Accuracy``, ``Loss`` and ``ConfusionMatrix``; Ignite is imported only for it:
loading a model to ``predict`` needs torch alone). Classifying image files is
:func:`ignite_mnist.inference.classify.predict` (named here too), image preprocessing
:mod:`ignite_mnist.data.preprocess`, export :mod:`ignite_mnist.inference.export`.

Example:
    >>> from ignite_mnist import TrainConfig, run
    >>> summary = run(TrainConfig(data_dir=data_dir, val_size=200, epochs=1, output_dir=runs, run_name="use",
    ...                           progress="none", tracker=["none"], plots=False))
    >>> loaded = load_model(summary.run_dir)  # a run directory stands for its best checkpoint
    >>> loaded.config.model, type(loaded.model).__name__, loaded.path.name
    ('mlp', 'TutorialMLP', 'best_checkpoint_32_accuracy=1.0000.pt')
    >>> evaluate(loaded).samples
    300
    >>> found, missing = predict(loaded, [digit_png, "missing.png"])
    >>> found.label in loaded.classes, missing.error
    (True, 'missing.png: no such file')
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from ignite_mnist.data.datasets import DatasetInfo, dataset_spec
from ignite_mnist.errors import CheckpointError, ConfigError, first_line
from ignite_mnist.inference.classify import Classifier, Prediction, predict
from ignite_mnist.inference.formats import EVAL_BATCH_SIZE
from ignite_mnist.models import build_model
from ignite_mnist.registry import is_import_path
from ignite_mnist.settings.config import TrainConfig, require_named_model
from ignite_mnist.storage.checkpoints import load_checkpoint, saved_settings
from ignite_mnist.storage.run_dir import RunDir, model_checkpoint

if TYPE_CHECKING:
    from ignite_mnist.evaluation import Evaluation

__all__ = [
    "Classifier",
    "LoadedModel",
    "Prediction",
    "default_output_path",
    "evaluate",
    "load_model",
    "predict",
    "predict_tensors",
]


def default_output_path(checkpoint: Path, suffix: str) -> Path:
    """Where a file derived from a checkpoint goes by default: its run directory, named after it.

    Example:
        >>> default_output_path(Path("runs/a/checkpoints/best_checkpoint_9_accuracy=0.9.pt"), ".onnx")
        PosixPath('runs/a/best_checkpoint_9_accuracy=0.9.onnx')
    """
    run_dir = RunDir.of_checkpoint(checkpoint)
    folder = run_dir.path if run_dir is not None else checkpoint.parent
    return folder / (checkpoint.name.removesuffix(".pt") + suffix)


@dataclass
class LoadedModel:
    """A model restored from a checkpoint, in eval mode, with what it was trained on."""

    model: nn.Module
    config: TrainConfig
    spec: DatasetInfo
    path: Path

    @property
    def classes(self) -> tuple[str, ...]:
        return self.spec.classes

    def probabilities(self, images: np.ndarray) -> np.ndarray:
        """Class probabilities ``(N, classes)`` for normalised ``float32 (N, 1, 28, 28)`` inputs (a
        :class:`~ignite_mnist.inference.classify.Classifier`)."""
        return predict_tensors(self.model, torch.as_tensor(images)).numpy()


def _config_of(path: Path, checkpoint: dict[str, Any], model: str | None, dataset: str | None) -> TrainConfig:
    """The settings a checkpoint was trained with; for a custom trainer's checkpoint, ``model``/``dataset`` say them."""
    saved = checkpoint.get("config")
    if not isinstance(saved, dict):
        if model is None:
            raise CheckpointError(f"{path}: holds weights but no ignite-mnist settings; pass --model (and --dataset "
                                  "unless it is mnist) to say which network they belong to")
        return TrainConfig(model=model, dataset=dataset or "mnist")
    values = saved_settings(saved, path)
    try:
        config = TrainConfig.from_dict(values)
        config.validate()
    except ConfigError as error:
        raise CheckpointError(f"{path}: its config does not fit this version of ignite-mnist ({error})") from None
    for flag, given, trained in (("--model", model, config.model), ("--dataset", dataset, config.dataset)):
        if given is not None and given != trained:
            advice = "pass exactly that" if flag == "--model" and is_import_path(trained) else f"leave {flag} out"
            raise ConfigError(flag, f"{path} was trained with {flag} {trained}; {advice}")
    require_named_model(config.model, model, path)
    return config


def load_model(
    path: str | Path, device: torch.device | str = "cpu", *, model: str | None = None, dataset: str | None = None
) -> LoadedModel:
    """Restore the model of a checkpoint file or run directory, ready for inference.

    Args:
        path: a checkpoint file, or a run directory (its best checkpoint).
        device: where the model goes.
        model: for a checkpoint without ignite-mnist settings (a custom trainer's): the
            ``--model`` its weights belong to.
        dataset: for such a checkpoint, the ``--dataset`` it was trained on (default ``mnist``).

    Raises:
        CheckpointError: missing, corrupt or unsafe file, or weights that do not fit
            the model its config names.

    Example:
        >>> load_model("missing.pt")
        Traceback (most recent call last):
        ...
        ignite_mnist.errors.CheckpointError: missing.pt: no such checkpoint file; check the path
    """
    given = Path(path)
    path = model_checkpoint(given)
    checkpoint = load_checkpoint(path, inside=given if given.is_dir() else None)  # a run's own file stays in it
    config = _config_of(path, checkpoint, model, dataset)
    saved = checkpoint.get("dataset")
    try:
        spec = DatasetInfo.from_dict(saved) if saved is not None else DatasetInfo.of(dataset_spec(config.dataset))
    except ValueError as error:
        raise CheckpointError(f"{path}: its {error}; the file is damaged or was not written by ignite-mnist") from None
    network = build_model(config.model, len(spec.classes))
    try:
        network.load_state_dict(checkpoint["model"])
    except (RuntimeError, TypeError, AttributeError) as error:
        raise CheckpointError(
            f"{path}: its weights do not fit the {config.model!r} model ({first_line(error)})") from None
    return LoadedModel(network.to(device).eval(), config, spec, path)


def evaluate(loaded: LoadedModel, data_dir: str | Path | None = None, device: torch.device | str = "cpu") -> Evaluation:
    """Test accuracy, loss, per-class accuracy and confusion matrix of a loaded model.

    Args:
        loaded: from :func:`load_model`.
        data_dir: dataset root; default the one the run was trained with.
        device: where to evaluate.
    """
    from ignite_mnist.data import TensorLoader, load_split_tensors
    from ignite_mnist.evaluation import evaluate_model

    images, labels = load_split_tensors(data_dir or loaded.config.data_dir, loaded.config.dataset, train=False)
    spec = loaded.spec
    loader = TensorLoader(images, labels, EVAL_BATCH_SIZE, mean=spec.mean, std=spec.std, device=device)
    return evaluate_model(loaded.model.to(device), loader, spec, device)


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
        parts = [model(images[i : i + batch_size].to(device)).softmax(1).cpu()
                 for i in range(0, len(images), batch_size)]
    model.train(was_training)
    return torch.cat(parts) if parts else torch.empty(0, 0)
