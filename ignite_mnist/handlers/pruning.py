"""Report each validation to an Optuna trial, and stop the training when the trial's pruner gives up on it.

optuna-integration's ``PyTorchIgnitePruningHandler`` reads an evaluator's
metrics after each of its runs, reports them at the trainer's epoch and raises
``optuna.TrialPruned`` out of the engine. This one differs where a managed run
needs it to:

* it listens to the trainer's :class:`~ignite_mnist.events.ValidationEvents`
  ``.VALIDATION_COMPLETED``, so validations in the middle of an epoch
  (``--val-every-iterations``) count, and reads ``trainer.state.metrics["val_*"]``;
* the step it reports is the validation's number (1, 2, ...), what W&B's
  hyperband calls an iteration (``early_terminate.min_iter``);
* it is checkpointed (``state_dict``): a trial resumed from a checkpoint goes on
  counting, and steps the trial already holds are not reported again;
* it stops the trainer (``terminate``) instead of raising, so the run still tests
  its best weights and writes its summary: a pruned trial is an ordinary, shorter run;
* it never prunes at the training's last validation, when there is nothing left to save.

The trial only needs ``report``, ``should_prune`` and ``set_user_attr`` (an ``optuna.Trial``).

Example:
    >>> import optuna
    >>> from ignite.engine import Engine, Events
    >>> from ignite_mnist.handlers.validation import attach_validation
    >>> optuna.logging.set_verbosity(optuna.logging.WARNING)
    >>> study = optuna.create_study(direction="maximize", pruner=optuna.pruners.ThresholdPruner(lower=0.5))
    >>> trainer, evaluator = Engine(lambda e, b: None), Engine(lambda e, b: None)
    >>> scores = iter([0.7, 0.4, 0.9])
    >>> _ = evaluator.add_event_handler(Events.COMPLETED, lambda e: e.state.metrics.update(accuracy=next(scores)))
    >>> _ = attach_validation(trainer, evaluator, [0])
    >>> pruning = attach_trial_pruning(trainer, study.ask(), "val_accuracy")
    >>> trainer.run(range(4), max_epochs=3).epoch, pruning.pruned_at
    (2, 2)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from ignite.engine import Engine

from ignite_mnist.events import EngineEvent, ValidationEvents
from ignite_mnist.handlers.state import resumable_state

__all__ = ["PRUNED_AT", "PRUNING_ENTRY", "TrialPruning", "attach_trial_pruning"]

#: The trial's user attribute that records the validation a trial was pruned at.
PRUNED_AT = "pruned_at"
#: The pruning handler's entry in checkpoints.
PRUNING_ENTRY = "trial_pruning"


class Trial(Protocol):
    def report(self, value: float, step: int) -> None: ...

    def should_prune(self) -> bool: ...

    def set_user_attr(self, key: str, value: Any) -> None: ...


class TrialPruning:
    """Reports ``trainer.state.metrics[metric]`` to ``trial`` after each validation; stops a pruned trial.

    Args:
        trial: the Optuna trial this run is.
        metric: a validation metric of the trainer, e.g. ``val_accuracy``.
        reported: the steps the trial already holds (a resumed trial), not reported again.

    Attributes:
        validations: how many validations this run has had (the step of the latest).
        pruned_at: the step the trial was pruned at, or None.
    """

    def __init__(self, trial: Trial, metric: str, reported: Mapping[int, float] | None = None) -> None:
        self.trial, self.metric = trial, metric
        self.reported = set(reported or ())
        self.validations = 0
        self.pruned_at: int | None = None
        self.trainer: Engine | None = None
        self.event: EngineEvent = ValidationEvents.VALIDATION_COMPLETED

    def __call__(self, trainer: Engine) -> None:
        self.validations += 1
        if self.validations not in self.reported:
            self.trial.report(float(trainer.state.metrics[self.metric]), self.validations)
            self.reported.add(self.validations)
        state = trainer.state
        planned = state.epoch_length * state.max_epochs if state.epoch_length and state.max_epochs else None
        last = planned is not None and state.iteration >= planned
        if not last and self.trial.should_prune():  # after the last validation there is nothing left to save
            self.pruned_at = self.validations
            self.trial.set_user_attr(PRUNED_AT, self.validations)
            trainer.terminate()

    def detach(self) -> None:
        """Stop reporting (and saving the count)."""
        if self.trainer is not None:
            if self.trainer.has_event_handler(self, self.event):
                self.trainer.remove_event_handler(self, self.event)
            resumable_state(self.trainer).remove(self)

    def state_dict(self) -> dict[str, int]:
        return {"validations": self.validations}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.validations = int(state["validations"])


def attach_trial_pruning(
    trainer: Engine, trial: Trial, metric: str, reported: Mapping[int, float] | None = None, *,
    event: EngineEvent = ValidationEvents.VALIDATION_COMPLETED,
) -> TrialPruning:
    """Report ``metric`` to ``trial`` after every validation of ``trainer`` (``event``) and stop it once pruned.

    Attach it after :func:`~ignite_mnist.handlers.attach_validation`. Saved in checkpoints (entry
    ``trial_pruning``) by itself, so a resumed trial keeps counting validations; ``.detach()`` removes it.
    """
    if not trainer.has_registered_events(ValidationEvents.VALIDATION_COMPLETED):
        raise ValueError("attach_validation first: the trainer fires no VALIDATION_COMPLETED")
    pruning = TrialPruning(trial, metric, reported)
    pruning.trainer, pruning.event = trainer, event
    trainer.add_event_handler(event, pruning)
    resumable_state(trainer).add(PRUNING_ENTRY, pruning)
    return pruning
