"""Run an evaluator on validation data every N epochs (and optionally every M iterations).

The results land in the trainer's ``state.metrics`` as ``val_<name>`` (so early
stopping, checkpoint scores and loggers read them from one place), and
``trainer.state.validated_at`` records the trainer iteration of the latest run.

Example:
    >>> handles = attach_validation(trainer, evaluator, val_loader, every=1)  # doctest: +SKIP
    >>> trainer.run(train_loader, max_epochs=2).metrics["val_accuracy"]  # doctest: +SKIP
    0.97
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ignite.engine import Engine, Events
from ignite.engine.events import RemovableEventHandle

__all__ = ["attach_validation", "validation_prefix"]

validation_prefix = "val_"


def attach_validation(
    trainer: Engine,
    evaluator: Engine,
    data: Iterable[Any],
    *,
    every: int = 1,
    every_iterations: int | None = None,
) -> list[RemovableEventHandle]:
    """Validate with ``evaluator`` on ``data`` during ``trainer``'s run.

    Args:
        trainer: the engine being trained (any Ignite ``Engine``).
        evaluator: an engine whose ``state.metrics`` hold the validation metrics.
        data: the validation batches.
        every: validate after every ``every``-th epoch and after the last one.
        every_iterations: also validate after every this-many trainer iterations.

    Returns:
        The event handles; ``handle.remove()`` detaches validation again.
    """
    if every <= 0:
        raise ValueError(f"every must be > 0, got {every}")
    if every_iterations is not None and every_iterations <= 0:
        raise ValueError(f"every_iterations must be > 0 or None, got {every_iterations}")

    def validate(engine: Engine) -> None:
        if getattr(engine.state, "validated_at", None) == engine.state.iteration:
            return  # an epoch end that is also an iteration milestone: validate once
        metrics = evaluator.run(data).metrics
        for name, value in metrics.items():
            engine.state.metrics[validation_prefix + name] = value
        engine.state.validated_at = engine.state.iteration

    def epoch_due(engine: Engine, epoch: int) -> bool:
        return epoch % every == 0 or epoch == engine.state.max_epochs

    handles = [trainer.add_event_handler(Events.EPOCH_COMPLETED(event_filter=epoch_due), validate)]
    if every_iterations is not None:
        handles.append(trainer.add_event_handler(Events.ITERATION_COMPLETED(every=every_iterations), validate))
    return handles
