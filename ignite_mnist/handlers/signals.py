"""Stop cleanly on SIGINT/SIGTERM: finish the iteration, save a resumable checkpoint, raise ``Interrupted``.

Ignite has no signal handling. :func:`attach_signal_checkpoint` installs
handlers that only set a flag; at the end of the current trainer iteration (at
an epoch's last iteration: at the epoch's end, once its validation, metrics row
and checkpoints are done, so the checkpoint holds the whole epoch) the trainer
saves a checkpoint and ``trainer.run`` raises :class:`~ignite_mnist.errors.Interrupted`, whose ``exit_code`` is the
shell's (130 for SIGINT, 143 for SIGTERM). A script that does nothing about it
therefore stops there, with a traceback naming the checkpoint, instead of going on to test a
half-trained model as if training had finished. A second signal of the same kind
interrupts at once, as usual. Previous handlers are restored when the run ends.

Example:
    >>> import os
    >>> from ignite.engine import Engine
    >>> trainer = Engine(lambda engine, batch: None)
    >>> _ = trainer.add_event_handler(Events.ITERATION_COMPLETED(once=2),
    ...                               lambda e: os.kill(os.getpid(), signal.SIGTERM))
    >>> stop = attach_signal_checkpoint(trainer, save=lambda engine: Path("saved.pt"))
    >>> trainer.run(range(5))
    Traceback (most recent call last):
    ...
    ignite_mnist.errors.Interrupted: interrupted by SIGTERM at iteration 2 (epoch 1); checkpoint saved to saved.pt
    >>> stop.received.name, stop.saved_to
    ('SIGTERM', PosixPath('saved.pt'))
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

import ignite.distributed as idist
from ignite.engine import Engine, Events

from ignite_mnist.errors import Interrupted
from ignite_mnist.events import EngineEvent, Handlers, add_for_each_event, ends_epoch_next, on_exception
from ignite_mnist.handlers.state import SIGNAL, resumable_state

if TYPE_CHECKING:
    from ignite_mnist.handlers.checkpoint import CheckpointHandlers

__all__ = ["HANDLED_SIGNALS", "SignalCheckpoint", "attach_signal_checkpoint"]

HANDLED_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class SignalCheckpoint:
    """Turns SIGINT/SIGTERM into "save, then raise ``Interrupted``" at the next safe point.

    Attributes:
        received: the signal that stopped the run (None while none arrived).
        saved_to: the checkpoint written then.
    """

    def __init__(self, save: Callable[[Engine], Path]) -> None:
        self.save = save
        self.received: signal.Signals | None = None
        self.saved_to: Path | None = None
        self.message: str | None = None
        self._previous: dict[signal.Signals, Any] = {}
        self._distributed = False  # set when the run starts; asking idist every iteration costs ~5 % of a step
        self.handlers = Handlers()
        self.trainer: Engine | None = None
        self.check_event: EngineEvent = Events.ITERATION_COMPLETED | Events.EPOCH_COMPLETED

    def attach_check(self, trainer: Engine) -> None:
        """Check for a signal at ``check_event`` and at every epoch's end (attached when the trainer starts,
        after every other handler)."""
        add_for_each_event(self.handlers, trainer, self.check_event, self.check)
        if not trainer.has_event_handler(self.check, Events.EPOCH_COMPLETED):
            self.handlers.add(trainer, Events.EPOCH_COMPLETED, self.check, Events.EPOCH_COMPLETED)

    def detach(self) -> None:
        """Stop handling signals (restores the previous handlers)."""
        self.handlers.remove()
        if self.trainer is not None:
            resumable_state(self.trainer).cancel(self.attach_check)
            self.trainer.logger.removeFilter(self)
            self.restore(self.trainer)

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        received = signal.Signals(signum)
        if self.received == received:  # asked twice: stop right now
            signal.signal(received, self._previous.get(received, signal.SIG_DFL))
            signal.raise_signal(received)
            return
        self.received = received

    def install(self, engine: Engine) -> None:
        self._distributed = idist.get_world_size() > 1
        if threading.current_thread() is not threading.main_thread():
            return  # signal handlers can only be set from the main thread
        for signum in HANDLED_SIGNALS:
            self._previous[signum] = signal.signal(signum, self._on_signal)

    def restore(self, engine: Engine, error: BaseException | None = None) -> None:
        for signum, previous in self._previous.items():
            signal.signal(signum, previous)
        self._previous.clear()

    def check(self, engine: Engine, fired: Any = Events.ITERATION_COMPLETED) -> None:
        """Save and raise ``Interrupted`` if a signal came; at an epoch's last iteration, wait for the epoch's
        end: a checkpoint taken there would count the epoch as done before its validation, metrics row and
        best checkpoint happened, and a resumed trainer would go straight to the next epoch."""
        if ends_epoch_next(engine, fired):
            return
        received = self.received  # read once: a signal may land while this runs
        if self._distributed:  # ranks must stop at the same iteration: agree on any rank's signal
            agreed = int(idist.all_reduce(int(received or 0), op="MAX"))
            received = signal.Signals(agreed) if agreed else None
        if received is not None and self.saved_to is None:
            self.received = received
            self.saved_to = self.save(engine)
            self.restore(engine)
            self.message = (f"interrupted by {received.name} at iteration {engine.state.iteration} "
                            f"(epoch {engine.state.epoch}); checkpoint saved to {self.saved_to}")
            raise Interrupted(self.message, received)

    def filter(self, record: logging.LogRecord) -> bool:
        """As a filter of the trainer's logger: drop Ignite's "terminating due to exception" lines about
        this interrupt (whoever catches the ``Interrupted`` reports it, once)."""
        return self.message is None or self.message not in record.getMessage()


def attach_signal_checkpoint(
    trainer: Engine, save: Callable[[Engine], Path] | CheckpointHandlers, *,
    event: EngineEvent = Events.ITERATION_COMPLETED | Events.EPOCH_COMPLETED,
) -> SignalCheckpoint:
    """On SIGINT or SIGTERM, save at the next ``event`` and raise ``Interrupted``.

    ``save`` is what :func:`~ignite_mnist.handlers.attach_checkpointing` returned (its
    ``save_now``), or any ``save(trainer) -> Path``. The check is attached when the
    trainer starts, after every other handler (so at an epoch's end validation and the
    logs have run before the state is saved), whatever the order of the attach calls.
    ``trainer.run`` then raises :class:`~ignite_mnist.errors.Interrupted`; catch it to
    report, or let it end the script. ``.detach()`` removes it.
    """
    stop = SignalCheckpoint(save if callable(save) else save.save_now)
    stop.trainer = trainer
    stop.handlers.add(trainer, Events.STARTED, stop.install)
    stop.handlers.add(trainer, Events.COMPLETED, stop.restore)
    stop.check_event = event
    resumable_state(trainer).defer(SIGNAL, stop.attach_check)
    on_exception(trainer, stop.restore)
    trainer.logger.addFilter(stop)
    return stop
