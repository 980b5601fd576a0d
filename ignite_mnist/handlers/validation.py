"""Run an evaluator on validation data at an event of the trainer (every epoch by default).

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
    >>> validation = attach_validation(trainer, evaluator, [0], event=every_epochs(2))
    >>> trainer.run(range(3), max_epochs=3).metrics
    {'val_accuracy': 0.5}
    >>> validation.runs, validation.last_iteration
    (2, 9)
"""

from __future__ import annotations

import contextlib
import gc
import weakref
from collections.abc import Iterable, Mapping
from typing import Any

from ignite.engine import Engine, Events
from ignite.engine.events import RemovableEventHandle
from ignite.metrics import (
    Accuracy,
    Loss,
    MeanAbsoluteError,
    MeanSquaredError,
    Metric,
    Precision,
    Recall,
    RootMeanSquaredError,
    TopKCategoricalAccuracy,
)

from ignite_mnist.engines import metrics_of
from ignite_mnist.events import EngineEvent, ValidationEvents

__all__ = ["VALIDATION_PREFIX", "Validation", "attach_validation", "attached_metric_modes", "declare_mode",
           "every_epochs", "is_validated", "known_mode", "metric_mode", "monitor_mode"]

#: Prefix of the validation metrics in ``trainer.state.metrics`` (``val_accuracy``, ``val_loss``).
VALIDATION_PREFIX = "val_"
#: Ignite's metrics whose smaller values are better, and those whose larger values are.
SMALLER_IS_BETTER = (Loss, MeanSquaredError, MeanAbsoluteError, RootMeanSquaredError)
LARGER_IS_BETTER = (Accuracy, Precision, Recall, TopKCategoricalAccuracy)

#: Per trainer: whether ``min`` or ``max`` is better for each value in its ``state.metrics`` that is known.
_MODES: weakref.WeakKeyDictionary[Engine, dict[str, str]] = weakref.WeakKeyDictionary()
#: The trainers a validation is attached to.
_VALIDATED: weakref.WeakSet[Engine] = weakref.WeakSet()


def is_validated(trainer: Engine) -> bool:
    """Whether :func:`attach_validation` attached a validation to ``trainer`` (so monitors will have values)."""
    return trainer in _VALIDATED


def metric_mode(metric: Metric) -> str | None:
    """``min`` for Ignite's losses and errors, ``max`` for accuracies, precision and recall, else None.

    Example:
        >>> from torch.nn import functional
        >>> metric_mode(Loss(functional.nll_loss)), metric_mode(Accuracy())
        ('min', 'max')
    """
    return "min" if isinstance(metric, SMALLER_IS_BETTER) else "max" if isinstance(metric, LARGER_IS_BETTER) else None


def attached_metric_modes(evaluator: Engine) -> dict[str, str]:
    """Which way is better for each metric of a known kind attached to ``evaluator``, after it ran.

    Ignite keeps no public table of an engine's metrics, so they are found among the live
    metrics (``Metric.is_attached``) and named by the value each computes, matched with
    ``evaluator.state.metrics``; a value two metrics of opposite kinds share names neither.
    Used once, when the caller gave no ``metrics=`` (a gc scan: about as long as the scan
    for unsaved objects).
    """
    found: dict[str, set[str]] = {}
    kinds = (*SMALLER_IS_BETTER, *LARGER_IS_BETTER)
    for metric in gc.get_objects():  # type(), not isinstance(): no object's own __class__ runs
        if issubclass(type(metric), kinds) and metric.is_attached(evaluator):
            with contextlib.suppress(Exception):  # a metric that cannot compute names nothing
                value = metric.compute()
                for name, computed in evaluator.state.metrics.items():
                    if isinstance(computed, float) and isinstance(value, float) and computed == value:
                        found.setdefault(name, set()).add(metric_mode(metric) or "")
    return {name: modes.pop() for name, modes in found.items() if len(modes) == 1 and "" not in modes}


def declare_mode(trainer: Engine, name: str, mode: str) -> None:
    """Say that ``mode`` (``min``/``max``) is better for ``trainer.state.metrics[name]``.

    Raises:
        ValueError: ``mode`` is neither, or another was declared for ``name``.
    """
    if mode not in ("min", "max"):
        raise ValueError(f"mode must be 'min' or 'max', got {mode!r}")
    modes = _MODES.setdefault(trainer, {})
    if modes.get(name, mode) != mode:
        raise ValueError(f"{name}: mode {mode!r} given, but {modes[name]!r} was declared before")
    modes[name] = mode


def known_mode(trainer: Engine, name: str) -> str | None:
    """``min`` or ``max``, whichever is better for ``trainer.state.metrics[name]``, when known; else None."""
    return _MODES.get(trainer, {}).get(name)


def monitor_mode(trainer: Engine, monitor: str, mode: str | None = None) -> str:
    """Whether ``min`` or ``max`` of ``trainer.state.metrics[monitor]`` is best: ``mode`` when given, else what
    is known of the metric (an Ignite ``Loss`` is minimised, an ``Accuracy`` maximised; see
    :func:`attach_validation`'s ``metrics``, and :func:`attached_metric_modes` after the first validation).
    Never guessed from the name.

    Raises:
        ValueError: neither is known (one line saying what to pass).
    """
    if mode is not None:
        declare_mode(trainer, monitor, mode)
        return mode
    known = known_mode(trainer, monitor)
    if known is None:
        raise ValueError(f"cannot tell whether a lower or a higher {monitor} is better: pass mode='min' or "
                         "mode='max', or the evaluator's metrics to attach_validation(..., metrics=...) (an Ignite "
                         "Loss is minimised, an Accuracy maximised)")
    return known


class Validation:
    """Validation of a trainer by an evaluator: what :func:`attach_validation` returns.

    Attributes:
        last_iteration: the trainer iteration of the latest validation (None before the first).
        runs: how many validations ran in this process.
        handles: the attached event handles; :meth:`detach` removes them.
        event: the trainer event it runs at (what follows validation listens to
            ``VALIDATION_COMPLETED`` instead of repeating it).
    """

    def __init__(self, evaluator: Engine, data: Iterable[Any], event: EngineEvent = Events.EPOCH_COMPLETED) -> None:
        self.evaluator = evaluator
        self.data = data
        self.event = event
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
        if self.runs == 0 and any(known_mode(trainer, VALIDATION_PREFIX + name) is None for name in metrics):
            for name, mode in attached_metric_modes(self.evaluator).items():
                if known_mode(trainer, VALIDATION_PREFIX + name) is None:
                    declare_mode(trainer, VALIDATION_PREFIX + name, mode)
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


def every_epochs(every: int) -> EngineEvent:
    """``EPOCH_COMPLETED`` every ``every`` epochs and after the last one (the managed run's ``--val-every``).

    Example:
        >>> from ignite.engine import Engine
        >>> trainer = Engine(lambda engine, batch: None)
        >>> seen = []
        >>> _ = trainer.add_event_handler(every_epochs(3), lambda engine: seen.append(engine.state.epoch))
        >>> _ = trainer.run([0], max_epochs=7)
        >>> seen
        [3, 6, 7]
    """
    if every <= 0:
        raise ValueError(f"every must be > 0, got {every}")

    def due(engine: Engine, epoch: int) -> bool:
        return epoch % every == 0 or epoch == engine.state.max_epochs

    return Events.EPOCH_COMPLETED(event_filter=due)


def attach_validation(
    trainer: Engine,
    evaluator: Engine,
    data: Iterable[Any],
    *,
    event: EngineEvent = Events.EPOCH_COMPLETED,
    metrics: Mapping[str, Metric] | None = None,
) -> Validation:
    """Validate with ``evaluator`` on ``data`` at ``event`` of ``trainer``.

    Args:
        trainer: the engine being trained (any Ignite ``Engine``).
        evaluator: an engine whose ``state.metrics`` hold the validation metrics.
        data: the validation batches.
        event: when, as Ignite's handlers take it: ``Events.EPOCH_COMPLETED(every=2)``,
            ``Events.EPOCH_COMPLETED | Events.ITERATION_COMPLETED(every=500)``,
            :func:`every_epochs` ``(n)``. An epoch end that is also an iteration
            milestone validates once.
        metrics: the evaluator's metrics by name (what ``create_supervised_evaluator`` was given): which
            way each is better is then known (an Ignite ``Loss`` is minimised, an ``Accuracy`` maximised) for
            the ``monitor`` of checkpoints and early stopping and for the run record (an evaluator of
            :func:`~ignite_mnist.engines.create_evaluator` says it by itself).

    Returns:
        The :class:`Validation` (``.detach()`` removes it). Handlers that read its results listen to
        ``ValidationEvents.VALIDATION_COMPLETED``, so they may be attached before or after it.
    """
    validation = Validation(evaluator, data, event)
    for name, metric in (metrics if metrics is not None else metrics_of(evaluator)).items():
        if (mode := metric_mode(metric)) is not None:
            declare_mode(trainer, VALIDATION_PREFIX + name, mode)
    if not trainer.has_registered_events(ValidationEvents.VALIDATION_COMPLETED):
        trainer.register_events(*ValidationEvents)
    validation.handles.append(trainer.add_event_handler(event, validation))
    _VALIDATED.add(trainer)
    return validation
