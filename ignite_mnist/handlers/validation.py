"""Run an evaluator on validation data every N epochs (and optionally every M iterations).

The results land in the trainer's ``state.metrics`` as ``val_<name>``
(``VALIDATION_PREFIX``), so early stopping, checkpoint scores, the metrics
log and trackers read them from one place. After each validation the trainer
fires :class:`~ignite_mnist.events.ValidationEvents` ``.VALIDATION_COMPLETED``, and the
returned :class:`Validation` says at which trainer iteration it last ran
(``ran_at`` / ``ran_since``): the one place other handlers ask.

Example:
    >>> from ignite.engine import Engine
    >>> trainer = Engine(lambda engine, batch: None)
    >>> evaluator = Engine(lambda engine, batch: None)
    >>> _ = evaluator.add_event_handler(Events.COMPLETED, lambda e: e.state.metrics.update(accuracy=0.5))
    >>> validation = attach_validation(trainer, evaluator, [0], every=2)
    >>> trainer.run(range(3), max_epochs=3).metrics
    {'val_accuracy': 0.5}
    >>> validation.runs, validation.last_iteration
    (2, 9)
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ignite.engine import Engine, Events
from ignite.engine.events import RemovableEventHandle

from ignite_mnist.events import ValidationEvents

__all__ = ["VALIDATION_PREFIX", "Validation", "attach_validation"]

#: Prefix of the validation metrics in ``trainer.state.metrics`` (``val_accuracy``, ``val_loss``).
VALIDATION_PREFIX = "val_"


class Validation:
    """Validation of a trainer by an evaluator: what :func:`attach_validation` returns.

    Attributes:
        last_iteration: the trainer iteration of the latest validation (None before the first).
        runs: how many validations ran in this process.
        handles: the attached event handles; :meth:`detach` removes them.
    """

    def __init__(self, evaluator: Engine, data: Iterable[Any]) -> None:
        self.evaluator = evaluator
        self.data = data
        self.last_iteration: int | None = None
        self.runs = 0
        self.handles: list[RemovableEventHandle] = []

    def __call__(self, trainer: Engine) -> None:
        """Validate now (once per trainer iteration) and copy the results into ``trainer.state.metrics``."""
        if self.ran_at(trainer.state.iteration):
            return  # an epoch end that is also an iteration milestone: validate once
        metrics = self.evaluator.run(self.data).metrics
        for name, value in metrics.items():
            trainer.state.metrics[VALIDATION_PREFIX + name] = value
        self.last_iteration = trainer.state.iteration
        self.runs += 1
        trainer.fire_event(ValidationEvents.VALIDATION_COMPLETED)

    def ran_at(self, iteration: int) -> bool:
        """Whether the latest validation ran at this trainer iteration."""
        return self.last_iteration == iteration

    def ran_since(self, iteration: int) -> bool:
        """Whether a validation ran after this trainer iteration."""
        return self.last_iteration is not None and self.last_iteration > iteration

    def detach(self) -> None:
        for handle in self.handles:
            handle.remove()
        self.handles.clear()


def attach_validation(
    trainer: Engine,
    evaluator: Engine,
    data: Iterable[Any],
    *,
    every: int = 1,
    every_iterations: int | None = None,
) -> Validation:
    """Validate with ``evaluator`` on ``data`` during ``trainer``'s run.

    Args:
        trainer: the engine being trained (any Ignite ``Engine``).
        evaluator: an engine whose ``state.metrics`` hold the validation metrics.
        data: the validation batches.
        every: validate after every ``every``-th epoch and after the last one.
        every_iterations: also validate after every this-many trainer iterations.

    Returns:
        The :class:`Validation`; attach the handlers that read its results after it.
    """
    if every <= 0:
        raise ValueError(f"every must be > 0, got {every}")
    if every_iterations is not None and every_iterations <= 0:
        raise ValueError(f"every_iterations must be > 0 or None, got {every_iterations}")
    validation = Validation(evaluator, data)
    if not trainer.has_registered_events(ValidationEvents.VALIDATION_COMPLETED):
        trainer.register_events(*ValidationEvents)

    def epoch_due(engine: Engine, epoch: int) -> bool:
        return epoch % every == 0 or epoch == engine.state.max_epochs

    validation.handles.append(trainer.add_event_handler(Events.EPOCH_COMPLETED(event_filter=epoch_due), validation))
    if every_iterations is not None:
        validation.handles.append(
            trainer.add_event_handler(Events.ITERATION_COMPLETED(every=every_iterations), validation)
        )
    return validation
