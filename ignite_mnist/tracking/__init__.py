"""Experiment trackers behind one small protocol, so a new tracker is a module, not new call sites.

A tracker follows a training run through four calls, in this order:

1. ``attach(trainer, evaluators=..., optimizer=..., model=..., record=...)``:
   register its logging handlers; the tracked run starts with the trainer (or
   at ``start()``), after a resume has restored its state;
2. ``log_test_report(evaluation)``: the test set's :class:`~ignite_mnist.evaluation.Evaluation`;
3. ``log_model(path)``: the best checkpoint;
4. ``finish(status, exit_code)``: ``finished``, ``interrupted`` or ``failed``.

Its ``state_dict()`` goes into every checkpoint under the tracker's ``name``, so
a resumed run continues the same tracked run. An exception out of
``trainer.run`` (an interrupt included) finishes the tracker by itself, with the
error's status. Each tracker class is built by
``in_folder(folder, *, config, log_every, **options)``, its ``options`` the fields of its
settings without the ``<tracker>_`` prefix; :func:`~ignite_mnist.handlers.attach_tracker`
builds them from the :data:`~ignite_mnist.registry.TRACKERS` registry, for the
managed run (``--tracker``) as for a hand-written trainer:
:mod:`~ignite_mnist.tracking.wandb`, :mod:`~ignite_mnist.tracking.tensorboard` and
:mod:`~ignite_mnist.tracking.mlflow`, each a
:class:`~ignite_mnist.tracking.base.LoggerTracker` around one of Ignite's loggers.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

if TYPE_CHECKING:
    import torch
    from ignite.engine import Engine

    from ignite_mnist.evaluation import Evaluation

__all__ = ["BestValues", "RunStatus", "Tracker"]

RunStatus = Literal["finished", "interrupted", "failed"]


class BestValues(Protocol):
    """What a tracker reads of a run's record: the best value of each validation metric so far.

    :class:`~ignite_mnist.handlers.RunRecord` is one; the trackers do not import the
    handlers (the handlers attach trackers, not the other way round).
    """

    @property
    def best(self) -> Mapping[str, float]: ...


@runtime_checkable
class Tracker(Protocol):
    """What the managed run needs of an experiment tracker."""

    name: str

    def attach(
        self,
        trainer: Engine,
        *,
        evaluators: Mapping[str, Engine] | None = None,
        optimizer: torch.optim.Optimizer | None = None,
        model: torch.nn.Module | None = None,
        record: BestValues | None = None,
    ) -> None: ...

    def start(self) -> None: ...

    def log_test_report(self, evaluation: Evaluation) -> None: ...

    def log_model(self, path: str | Path | None) -> None: ...

    def finish(self, status: RunStatus = "finished", exit_code: int = 0) -> None: ...

    def on_detach(self, callback: Callable[[], None]) -> None: ...

    def detach(self) -> None: ...

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: dict[str, Any]) -> None: ...
