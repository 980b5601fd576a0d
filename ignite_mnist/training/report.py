"""Phase 5 of a run: test the best weights once and report it everywhere: summary, plots, trackers.

The test set is evaluated once (:func:`~ignite_mnist.evaluation.evaluate_model`);
that one :class:`~ignite_mnist.evaluation.Evaluation` feeds ``summary.json``, the
plots and every tracker. Totals come from the run's
:class:`~ignite_mnist.handlers.RunRecord`, so a resumed run reports the whole
run's training time and samples, not only its last part.

Example:
    >>> samples_seen(iteration=5, epoch_length=4, num_samples=100, batch_size=32)
    132
"""

from __future__ import annotations

import dataclasses
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ignite.handlers import Checkpoint

from ignite_mnist.data import DatasetInfo
from ignite_mnist.evaluation import Evaluation, evaluate_model
from ignite_mnist.handlers import stopped_early
from ignite_mnist.runtime.distributed import broadcast_module, is_rank_zero
from ignite_mnist.storage.checkpoints import load_checkpoint
from ignite_mnist.tracking import Tracker
from ignite_mnist.training.parts import RunParts
from ignite_mnist.training.plots import write_run_plots
from ignite_mnist.training.resume import ResumePlan
from ignite_mnist.training.wiring import RunHandlers

__all__ = ["Summary", "samples_seen", "test_and_report"]


@dataclass
class Summary:
    """What ``summary.json`` holds at the end of a run.

    ``best_checkpoint`` and ``resumed_from`` are relative to the run directory
    (``run_dir``, absolute), so the folder can be moved. ``train_seconds`` and
    ``samples_per_second`` cover the whole run, every process of it;
    ``resumed_at`` lists the iterations at which it was resumed.
    """

    run_dir: str
    test_accuracy: float
    test_loss: float
    best_val_accuracy: float | None
    epochs_completed: int
    train_seconds: float
    samples_per_second: float
    best_checkpoint: str | None = None
    stopped_early: bool = False
    stopped_epoch: int | None = None
    resumed_from: str | None = None
    resumed_at: list[int] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> Summary:
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in known})


def samples_seen(iteration: int, epoch_length: int, num_samples: int, batch_size: int) -> int:
    """Training samples one rank has seen after ``iteration`` iterations (the last batch of an epoch may be short)."""
    full_epochs, rest = divmod(iteration, epoch_length)
    return full_epochs * num_samples + min(rest * batch_size, num_samples)


def load_best_weights(parts: RunParts, handlers: RunHandlers) -> Path | None:
    """Put the best checkpoint's weights into the model (rank 0 reads, the others get them); return its path."""
    best_path = handlers.checkpoints.best_path
    if best_path is not None:
        if is_rank_zero():  # only rank 0 wrote it
            Checkpoint.load_objects({"model": parts.model}, load_checkpoint(best_path))
        broadcast_module(parts.model)
    return best_path


def _summary(parts: RunParts, handlers: RunHandlers, evaluation: Evaluation, best_path: Path | None,
             plan: ResumePlan | None) -> Summary:
    state, record, run_dir = parts.trainer.state, handlers.record, parts.run_dir
    loader = parts.train_loader
    samples = parts.world_size * samples_seen(state.iteration, len(loader), loader.num_samples,
                                              parts.config.batch_size // parts.world_size)
    seconds = record.train_seconds
    return Summary(
        run_dir=str(run_dir.path.resolve()),
        test_accuracy=evaluation.accuracy,
        test_loss=evaluation.loss,
        best_val_accuracy=record.best.get("val_accuracy"),
        epochs_completed=state.epoch,
        train_seconds=round(seconds, 3),
        samples_per_second=round(samples / seconds, 1) if seconds > 0 else 0.0,
        best_checkpoint=run_dir.relative(best_path) if best_path is not None else None,
        stopped_early=stopped_early(handlers.stopper),
        stopped_epoch=state.epoch if stopped_early(handlers.stopper) else None,
        resumed_from=run_dir.relative(plan.path) if plan is not None else None,
        resumed_at=list(record.resumed_at),
    )


def test_and_report(parts: RunParts, handlers: RunHandlers, plan: ResumePlan | None) -> Summary:
    """Test the best weights; draw the plots; report to the trackers and close them; write ``summary.json``.

    ``summary.json`` comes last: it exists only once everything else is done, so a run
    stopped anywhere before is taken up again by ``--resume auto``. The trackers report in a
    thread of their own while the plots are drawn; both are done before ``summary.json`` is written.
    """
    best_path = load_best_weights(parts, handlers)
    evaluation = evaluate_model(parts.model, parts.test_loader, DatasetInfo.of(parts.spec), parts.device)
    summary = _summary(parts, handlers, evaluation, best_path, plan)
    # a tracker that may (W&B's ``background``) reports and closes, mostly waiting on its service and files,
    # while the plots are drawn; the others (MLflow's active run is the thread's own) after them
    behind = [tracker for tracker in handlers.trackers if getattr(tracker, "background", False)]
    reporting = threading.Thread(target=_report_to_trackers, args=(behind, evaluation, best_path),
                                 name="trackers-report")
    reporting.start()
    try:
        if is_rank_zero() and parts.config.plots:
            write_run_plots(parts.run_dir, evaluation, parts.config.label_smoothing)
        _report_to_trackers([t for t in handlers.trackers if t not in behind], evaluation, best_path)
    finally:
        reporting.join()
    if is_rank_zero():
        parts.run_dir.write_summary(summary.to_dict())
    return summary


def _report_to_trackers(trackers: list[Tracker], evaluation: Evaluation, best_path: Path | None) -> None:
    for tracker in trackers:
        tracker.start()
        tracker.log_test_report(evaluation)
        tracker.log_model(best_path)
        tracker.finish()
