"""After training: the best checkpoint on the test set, reported to the trackers: :func:`evaluate_best`."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from ignite_mnist.evaluation import Evaluation, evaluate_model
from ignite_mnist.handlers.checkpoint import CheckpointHandlers
from ignite_mnist.storage.checkpoints import load_checkpoint

if TYPE_CHECKING:
    from ignite_mnist.data import DatasetInfo
    from ignite_mnist.tracking import Tracker

__all__ = ["evaluate_best"]


def evaluate_best(
    model: torch.nn.Module,
    checkpoints: CheckpointHandlers,
    batches: Iterable[Any],
    dataset: DatasetInfo,
    trackers: Sequence[Tracker] = (),
) -> tuple[Path, Evaluation]:
    """Load the best checkpoint (the newest one without a best) into ``model``, evaluate it on ``batches``.

    Each tracker gets the test report and the checkpoint, then is finished.

    Returns:
        The checkpoint used, and its :class:`~ignite_mnist.evaluation.Evaluation`.
    """
    path = checkpoints.best_path or checkpoints.latest_path
    model.load_state_dict(load_checkpoint(path)["model"])
    evaluation = evaluate_model(model, batches, dataset)
    for tracker in trackers:
        tracker.log_test_report(evaluation)
        tracker.log_model(path)
        tracker.finish()
    return path, evaluation
