"""Early stopping that follows validation, its patience in trainer epochs, on Ignite's ``EarlyStopping``.

Ignite's handler counts the calls it receives: attached to an evaluator that
validates every epoch that is epochs, with validation every N epochs (or also
mid-epoch) it is not. Here it listens to the trainer's
``ValidationEvents.VALIDATION_COMPLETED``, whatever event validation runs at, and
``patience`` counts the trainer epochs since the best score (the iteration of
the best is kept in its ``state_dict``), so the validation interval is given once,
to :func:`~ignite_mnist.handlers.attach_validation`. It registers itself with the
trainer's resumable state (entry ``early_stopping``) and is added with
``add_event_handler`` rather than Ignite's ``attach``, which would reset it when a
resumed run starts.

Example:
    >>> from ignite.engine import Engine, Events
    >>> from ignite_mnist.handlers.validation import attach_validation
    >>> trainer = Engine(lambda engine, batch: None)
    >>> evaluator = Engine(lambda engine, batch: None)
    >>> _ = evaluator.add_event_handler(Events.COMPLETED, lambda e: e.state.metrics.update(accuracy=0.5))
    >>> stopper = attach_early_stopping(trainer, patience=2, mode="max")  # before or after validation
    >>> validation = attach_validation(trainer, evaluator, [0], event=Events.EPOCH_COMPLETED(every=2))
    >>> trainer.run(range(3), max_epochs=10).epoch, stopped_early(stopper)
    (4, True)
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

from ignite.engine import Engine
from ignite.handlers import EarlyStopping

from ignite_mnist.events import ValidationEvents
from ignite_mnist.handlers.state import SETUP, resumable_state
from ignite_mnist.handlers.validation import declare_mode, known_mode, monitor_mode

__all__ = ["EpochEarlyStopping", "attach_early_stopping", "stopped_early"]


class EpochEarlyStopping(EarlyStopping):
    """Ignite's ``EarlyStopping`` whose ``counter`` is the number of trainer epochs since the best score."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.best_iteration: int | None = None
        self.monitor: str | None = None  # the trainer metric, when attach_early_stopping set it
        self.requested_mode: str | None = None
        self._settled = False

    def settle_mode(self, trainer: Engine) -> None:
        """Take the better direction of the monitored metric (``mode``, else what is known of it): when the
        trainer starts if it is known then, else at the first validation (raises one line if nothing tells)."""
        if self.monitor is not None and not self._settled:
            self.mode = monitor_mode(trainer, self.monitor, self.requested_mode)  # type: ignore[assignment]
            self._settled = True

    def settle_known_mode(self, trainer: Engine) -> None:
        if self.monitor is not None and (self.requested_mode or known_mode(trainer, self.monitor)):
            self.settle_mode(trainer)

    def _improved(self, score: float) -> bool:
        if self.best_score is None:
            return True
        if self.mode == "min":
            return score < self.best_score - self.threshold
        return score > self.best_score + self.threshold

    def __call__(self, engine: Engine) -> None:
        self.settle_mode(engine)
        score = self.score_function(engine)
        iteration, epoch_length = engine.state.iteration, engine.state.epoch_length or 1
        if self._improved(score):
            self.best_score, self.best_iteration, self.counter = score, iteration, 0
            return
        if self.best_iteration is None:  # restored from a checkpoint that counted epochs only
            self.best_iteration = iteration - self.counter * epoch_length
        self.counter = (iteration - self.best_iteration) // epoch_length
        if self.counter >= self.patience:
            self.logger.info("EarlyStopping: stop training")
            self.trainer.terminate()

    @property
    def stopped_run(self) -> bool:
        """Whether its patience is used up: the run it watches has ended (a resume finds it finished)."""
        return stopped_early(self)

    def detach(self) -> None:
        """Stop checking (and saving) it."""
        if self.trainer.has_event_handler(self, ValidationEvents.VALIDATION_COMPLETED):
            self.trainer.remove_event_handler(self, ValidationEvents.VALIDATION_COMPLETED)
        state = resumable_state(self.trainer)
        state.remove(self)
        state.cancel(self.settle_known_mode)

    def state_dict(self) -> OrderedDict[str, Any]:
        state = super().state_dict()
        state["best_iteration"] = self.best_iteration
        return state

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        super().load_state_dict({k: v for k, v in state_dict.items() if k != "best_iteration"})
        self.best_iteration = state_dict.get("best_iteration")


def attach_early_stopping(
    trainer: Engine,
    *,
    patience: int,
    monitor: str = "val_accuracy",
    mode: str | None = None,
    min_delta: float = 0.0,
) -> EpochEarlyStopping:
    """Stop ``trainer`` when ``trainer.state.metrics[monitor]`` has not improved for ``patience`` epochs.

    Args:
        trainer: the engine to stop; checked after each validation.
        patience: trainer epochs without an improvement larger than ``min_delta``.
        monitor: the metric, e.g. ``val_accuracy`` or ``val_loss`` (the name checkpointing takes too).
        mode: ``max`` or ``min``; by default what is known of the monitored metric (an Ignite ``Loss`` is
            minimised, an ``Accuracy`` maximised: :func:`~ignite_mnist.handlers.validation.monitor_mode`);
            when nothing is, the trainer's start fails with one line asking for it.
        min_delta: the smallest change that counts as an improvement.

    Returns:
        The :class:`EpochEarlyStopping`, saved in checkpoints by itself; ``stopper.detach()`` removes it.
    """
    if patience <= 0:
        raise ValueError(f"patience must be > 0, got {patience}")
    if mode is not None:
        declare_mode(trainer, monitor, mode)  # a wrong mode fails here, at the attach call
    stopper = EpochEarlyStopping(
        patience=patience,
        score_function=lambda engine: float(engine.state.metrics[monitor]),
        trainer=trainer,
        threshold=min_delta,
        mode=mode or "max",  # settled when the trainer starts
    )
    stopper.monitor, stopper.requested_mode = monitor, mode
    # Ignite's own logger prints a timestamped INFO line even with --progress none; this one, like any
    # library's, prints only where logging is configured. The run's last line says it stopped early.
    stopper.logger = logging.getLogger(__name__)
    if not trainer.has_registered_events(ValidationEvents.VALIDATION_COMPLETED):
        trainer.register_events(*ValidationEvents)
    trainer.add_event_handler(ValidationEvents.VALIDATION_COMPLETED, stopper)
    state = resumable_state(trainer)
    state.add("early_stopping", stopper)
    state.defer(SETUP, stopper.settle_known_mode)
    return stopper


def stopped_early(stopper: EarlyStopping | None) -> bool:
    """Whether ``stopper`` has used up its patience (and so terminated the trainer)."""
    return stopper is not None and stopper.counter >= stopper.patience
