"""Early stopping whose patience counts trainer epochs, on Ignite's ``EarlyStopping``.

Ignite's handler counts the calls it receives. Attached to an evaluator that
runs every epoch that equals epochs; with validation every N epochs (or also
mid-epoch) it does not. Here the handler is called once per *validated epoch*
on the trainer, and ``patience`` (in epochs) is turned into validations:
``ceil(patience / every)``. It is added with ``add_event_handler`` rather than
Ignite's ``attach``, which would reset its state when a resumed run starts.

Example:
    >>> from ignite.engine import Engine
    >>> from ignite_mnist.handlers.validation import attach_validation
    >>> trainer = Engine(lambda engine, batch: None)
    >>> evaluator = Engine(lambda engine, batch: None)
    >>> _ = evaluator.add_event_handler(Events.COMPLETED, lambda e: e.state.metrics.update(accuracy=0.5))
    >>> validation = attach_validation(trainer, evaluator, [0])
    >>> stopper = attach_early_stopping(trainer, validation, patience=2)
    >>> trainer.run(range(3), max_epochs=10).epoch, stopped_early(stopper)
    (3, True)
"""

from __future__ import annotations

import logging
import math

from ignite.engine import Engine, Events
from ignite.handlers import EarlyStopping

from ignite_mnist.handlers.validation import Validation
from ignite_mnist.registry import lower_is_better

__all__ = ["attach_early_stopping", "stopped_early"]


def attach_early_stopping(
    trainer: Engine,
    validation: Validation,
    *,
    patience: int,
    monitor: str = "val_accuracy",
    mode: str | None = None,
    min_delta: float = 0.0,
    every: int = 1,
) -> EarlyStopping:
    """Stop ``trainer`` when ``trainer.state.metrics[monitor]`` stops improving.

    Args:
        trainer: the engine to stop.
        validation: what :func:`~ignite_mnist.handlers.attach_validation` returned;
            it writes ``monitor`` into the trainer's ``state.metrics``.
        patience: epochs without an improvement larger than ``min_delta``.
        monitor: the metric, e.g. ``val_accuracy`` or ``val_loss``.
        mode: ``max`` or ``min``; by default ``min`` for names containing "loss", else ``max``.
        min_delta: the smallest change that counts as an improvement.
        every: validation runs every this many epochs.

    Returns:
        Ignite's ``EarlyStopping``; keep it in the checkpoint (it has ``state_dict``).
    """
    if patience <= 0:
        raise ValueError(f"patience must be > 0, got {patience}")
    if every <= 0:
        raise ValueError(f"every must be > 0, got {every}")
    mode = mode or ("min" if lower_is_better(monitor) else "max")
    stopper = EarlyStopping(
        patience=math.ceil(patience / every),
        score_function=lambda engine: float(engine.state.metrics[monitor]),
        trainer=trainer,
        threshold=min_delta,
        mode=mode,
    )
    # Ignite's own logger prints a timestamped INFO line even with --progress none; this one, like any
    # library's, prints only where logging is configured. The run's last line says it stopped early.
    stopper.logger = logging.getLogger(__name__)

    def validated_this_epoch(engine: Engine, epoch: int) -> bool:
        first_iteration = (epoch - 1) * (engine.state.epoch_length or 0)
        return validation.ran_since(first_iteration) and monitor in engine.state.metrics

    trainer.add_event_handler(Events.EPOCH_COMPLETED(event_filter=validated_this_epoch), stopper)
    return stopper


def stopped_early(stopper: EarlyStopping | None) -> bool:
    """Whether ``stopper`` has used up its patience (and so terminated the trainer)."""
    return stopper is not None and stopper.counter >= stopper.patience
