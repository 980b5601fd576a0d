"""What every tracker shares: an Ignite logger opened when the trainer starts, guarded handlers, one step axis.

Ignite supplies the loggers (``WandBLogger``, ``TensorboardLogger``,
``MLflowLogger``) and their ``OutputHandler``/``OptimizerParamsHandler``;
:func:`attach_scalars` attaches the same scalars to any of them, all at the
trainer's iteration (``global_step_from_engine(trainer, Events.ITERATION_COMPLETED)``),
so every tracker's curves share one x axis and W&B never drops a row for a step
that went backwards. Added here, because Ignite's loggers open their run when
they are built and let an error reach the engine:

* :class:`LoggerTracker` opens the tracker's run when the trainer starts (or at
  :meth:`~LoggerTracker.start`), after a resume restored its state, so a resumed
  training continues the same run;
* a guard around every handler: the first error is reported once, that tracker
  stops logging, training goes on; a tracker that cannot start says so once;
* only rank 0 logs; an interrupt or error out of ``trainer.run`` closes the run
  with that status.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import torch
from ignite.engine import Engine, Events
from ignite.engine.events import RemovableEventHandle
from ignite.handlers import global_step_from_engine
from ignite.handlers.base_logger import BaseLogger

from ignite_mnist.console import note
from ignite_mnist.errors import Interrupted, first_line
from ignite_mnist.events import EngineEvent, on_exception
from ignite_mnist.runtime.distributed import is_rank_zero

if TYPE_CHECKING:
    from ignite_mnist.evaluation import Evaluation
    from ignite_mnist.tracking import BestValues, RunStatus

__all__ = ["GuardedLogger", "LoggerTracker", "attach_scalars"]


class GuardedLogger:
    """Mixin for an Ignite logger: every handler attached to it passes through ``self.__dict__["guard"]``.

    Set ``guard`` through ``__dict__``: Ignite's loggers forward unknown attributes to their library.
    """

    def attach(self, engine: Engine, log_handler: Callable[..., Any], event_name: Any, *args: Any, **kwargs: Any
               ) -> RemovableEventHandle:
        handle: RemovableEventHandle = super().attach(  # type: ignore[misc]  # a mixin: the logger is next in line
            engine, self.__dict__["guard"](log_handler), event_name, *args, **kwargs)
        return handle


def attach_scalars(
    logger: BaseLogger,
    trainer: Engine,
    *,
    evaluators: Mapping[str, Engine] | None = None,
    optimizer: torch.optim.Optimizer | None = None,
    log_every: int = 50,
    epoch_metrics: Sequence[str] = ("train_loss",),
    epoch_number: bool = True,
) -> list[RemovableEventHandle]:
    """Attach Ignite's output and optimizer handlers of ``logger``, all at the trainer's iteration.

    ``train/loss`` (the engine output) and ``lr/group_<i>`` every ``log_every``
    iterations; ``epoch/<metric>`` for those of ``epoch_metrics`` the trainer has,
    and ``epoch/epoch`` (unless not ``epoch_number``), after each epoch; ``<name>/<metric>`` after
    every run of each evaluator. (Ignite's MLflow handlers join with a space:
    ``train loss``, ``lr group_0``.)

    Returns:
        The handles (``handle.remove()`` detaches one).
    """
    at_iteration = global_step_from_engine(trainer, Events.ITERATION_COMPLETED)
    every = Events.ITERATION_COMPLETED(every=log_every)

    def epoch_values(_: Any) -> dict[str, Any]:
        return {name: trainer.state.metrics[name] for name in epoch_metrics if name in trainer.state.metrics}

    handles = [logger.attach_output_handler(trainer, every, tag="train", output_transform=lambda loss: {"loss": loss})]
    if optimizer is not None:
        handles.append(logger.attach_opt_params_handler(trainer, every, optimizer))
    handles.append(logger.attach_output_handler(trainer, Events.EPOCH_COMPLETED, tag="epoch",
                                                output_transform=epoch_values,
                                                state_attributes=["epoch"] if epoch_number else None,
                                                global_step_transform=at_iteration))
    for tag, evaluator in (evaluators or {}).items():
        handles.append(logger.attach_output_handler(evaluator, Events.COMPLETED, tag=tag, metric_names="all",
                                                    global_step_transform=at_iteration))
    return handles


class LoggerTracker:
    """A :class:`~ignite_mnist.tracking.Tracker` on an Ignite logger; subclasses say how to open, log and close.

    A subclass sets ``name`` (its registry name, and its entry in checkpoints) and
    ``title`` (for messages), and implements ``_make_logger`` (the Ignite logger,
    not yet opened: a :class:`GuardedLogger`), ``_open`` (start the run; False when
    it cannot), ``_close``, and the ``_log_test_report``/``_log_model`` it supports.

    Args:
        log_every: iterations between two training-loss rows.
        enabled: False logs nothing (the tracker still carries its state through checkpoints);
            ranks other than 0 are never enabled.

    Attributes:
        logger: the Ignite logger, once attached.
        handles: the attached logging handles.
        failed: True once an error stopped logging.
        closed: True once :meth:`finish` ran.
    """

    name: ClassVar[str]
    title: ClassVar[str]
    #: Whether the epoch number is a logged series (``epoch/epoch``) too.
    logs_epoch_number: ClassVar[bool] = True

    def __init__(self, *, log_every: int = 50, enabled: bool = True) -> None:
        if log_every <= 0:
            raise ValueError(f"log_every must be > 0, got {log_every}")
        self.log_every = log_every
        self.enabled = enabled and is_rank_zero()
        self.logger: Any = None
        self.trainer: Engine | None = None
        self.model: torch.nn.Module | None = None
        self.handles: list[RemovableEventHandle] = []
        self.started = self.opened = self.failed = self.closed = False
        self._detachers: list[Callable[[], None]] = []

    @property
    def active(self) -> bool:
        """Whether anything is still being logged."""
        return self.opened and not self.failed and not self.closed

    def _make_logger(self) -> BaseLogger:
        raise NotImplementedError

    def _open(self) -> bool:
        raise NotImplementedError

    def _close(self, status: RunStatus, exit_code: int) -> None:
        raise NotImplementedError

    def _log_test_report(self, evaluation: Evaluation) -> None:
        """Nothing beyond the scalars, unless a subclass logs more."""

    def _log_model(self, path: Path) -> None:
        """Nothing, unless the tracker stores files."""

    def start(self, engine: Engine | None = None) -> None:
        """Open the tracked run (once; the trainer's ``STARTED`` calls it if nobody did before)."""
        if self.started or self.closed:
            return
        self.started = True
        if not self.enabled:
            return
        try:
            self.opened = self._open()
        except Exception as error:  # noqa: BLE001 - a tracker must never end a training
            self._could_not_start(error)

    def _could_not_start(self, error: Exception) -> None:
        if isinstance(error, ImportError):
            why = f'{first_line(error)}: pip install "ignite-mnist[{self.name}]"'
        else:
            why = f"{type(error).__name__}: {first_line(error)}"
        note("warning", f"{self.title} could not start ({why}); training goes on without {self.title}")

    def guard(self, handler: Callable[..., Any]) -> Callable[..., Any]:
        """Wrap a handler so an error is reported once and never reaches the engine."""

        def guarded(*args: Any, **kwargs: Any) -> None:
            if not self.active:
                return
            try:
                handler(*args, **kwargs)
            except Exception as error:  # noqa: BLE001 - a tracker must never end a training
                self.failed = True
                note("warning", f"{self.title} logging failed ({type(error).__name__}: {first_line(error)}); "
                               f"training goes on without {self.title} logging")

        return guarded

    def _on(self, engine: Engine, event: EngineEvent, handler: Callable[..., Any]) -> None:
        self.handles.append(engine.add_event_handler(event, self.guard(handler)))

    def attach(
        self,
        trainer: Engine,
        *,
        evaluators: Mapping[str, Engine] | None = None,
        optimizer: torch.optim.Optimizer | None = None,
        model: torch.nn.Module | None = None,
        record: BestValues | None = None,
        epoch_metrics: Sequence[str] = ("train_loss",),
    ) -> None:
        """Log ``trainer`` (and its evaluators) to the run, all at the trainer's iteration
        (see :func:`attach_scalars`)."""
        self.trainer, self.model = trainer, model
        trainer.add_event_handler(Events.STARTED, self.start)
        self._detachers.append(on_exception(trainer, self._finish_on_error))
        if self.enabled:
            self.logger = self._make_logger()
            self.handles += attach_scalars(self.logger, trainer, evaluators=evaluators, optimizer=optimizer,
                                           log_every=self.log_every, epoch_metrics=epoch_metrics,
                                           epoch_number=self.logs_epoch_number)

    def on_detach(self, callback: Callable[[], None]) -> None:
        """Call ``callback()`` when the tracker is detached (whoever saves it stops saving it)."""
        self._detachers.append(callback)

    def detach(self) -> None:
        """Stop logging the trainer (the tracked run stays open until :meth:`finish`)."""
        for handle in self.handles:
            handle.remove()
        self.handles.clear()
        if self.trainer is not None and self.trainer.has_event_handler(self.start, Events.STARTED):
            self.trainer.remove_event_handler(self.start, Events.STARTED)
        for detach in self._detachers:
            detach()
        self._detachers.clear()

    def step(self) -> int | None:
        """The trainer's iteration: the step every value is logged at."""
        return self.trainer.state.iteration if self.trainer is not None else None

    def log_test_report(self, evaluation: Evaluation) -> None:
        """Log the test set's results (what the tracker can show of them)."""
        self.guard(self._log_test_report)(evaluation)

    def log_model(self, path: str | Path | None) -> None:
        """Keep the checkpoint at ``path`` with the run (where the tracker stores files)."""
        if path is not None:
            self.guard(self._log_model)(Path(path))

    def finish(self, status: RunStatus = "finished", exit_code: int = 0) -> None:
        """Close the run with ``status`` (flushes everything); later calls do nothing."""
        if self.closed:
            return
        self.closed = True
        if not self.opened:
            return
        try:
            self._close(status, exit_code)
        except Exception as error:  # noqa: BLE001 - a tracker must never end a training
            if not self.failed:
                note("warning", f"{self.title} could not close the run ({type(error).__name__}: {first_line(error)})")

    def _finish_on_error(self, engine: Engine, error: BaseException) -> None:
        interrupted = isinstance(error, (Interrupted, KeyboardInterrupt))
        self.finish("interrupted" if interrupted else "failed", getattr(error, "exit_code", 130 if interrupted else 1))
