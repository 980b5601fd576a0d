"""Events of ignite-mnist's engines: the validation event, and reacting to an exception without swallowing it.

``ValidationEvents.VALIDATION_COMPLETED`` is an Ignite custom event that
:func:`~ignite_mnist.handlers.attach_validation` registers on the trainer and
fires after each validation; handlers that report validations attach to it.

Ignite hands an exception raised during a run to the ``EXCEPTION_RAISED``
handlers *instead of* raising it: as soon as one handler is attached, the error
is gone unless a handler raises it again, and when several handlers each raise
it, only the first one runs. :func:`on_exception` registers callbacks behind one
``EXCEPTION_RAISED`` handler per engine that calls them all, in order, and then
raises the error again, so the signal handler, the trackers and the caller all
see it.

Example:
    >>> from ignite.engine import Engine
    >>> def fail(engine, batch):
    ...     raise RuntimeError("boom")
    >>> trainer = Engine(fail)
    >>> seen = []
    >>> _ = on_exception(trainer, lambda engine, error: seen.append(str(error)))
    >>> _ = on_exception(trainer, lambda engine, error: seen.append("second"))
    >>> trainer.run([0])
    Traceback (most recent call last):
    ...
    RuntimeError: boom
    >>> seen
    ['boom', 'second']
"""

from __future__ import annotations

import contextlib
import weakref
from collections.abc import Callable
from typing import Any

from ignite.engine import Engine, EventEnum, Events
from ignite.engine.events import CallableEventWithFilter, EventsList

__all__ = ["EngineEvent", "Handlers", "ValidationEvents", "on_exception"]

#: An event a handler can be attached at, as Ignite takes it: ``Events.EPOCH_COMPLETED``, a filtered
#: ``Events.ITERATION_COMPLETED(every=500)``, a custom event, or several joined with ``|``.
EngineEvent = CallableEventWithFilter | EventsList


class ValidationEvents(EventEnum):
    """Events :func:`~ignite_mnist.handlers.attach_validation` registers on the trainer."""

    #: fired on the trainer right after the validation metrics were copied into its state
    VALIDATION_COMPLETED = "validation_completed"


class Handlers:
    """Event handlers attached to engines, detached all at once with :meth:`remove`.

    Ignite's ``RemovableEventHandle`` holds its handler weakly, so it cannot remove
    a bound method (gone as soon as it was attached); this keeps the handler.

    Example:
        >>> trainer = Engine(lambda engine, batch: None)
        >>> handlers = Handlers()
        >>> handlers.add(trainer, Events.EPOCH_COMPLETED | Events.COMPLETED, print)
        >>> handlers.remove()
        >>> trainer.has_event_handler(print, Events.COMPLETED)
        False
    """

    def __init__(self) -> None:
        self.attached: list[tuple[Engine, Any, Callable[..., Any]]] = []

    def add(self, engine: Engine, event: EngineEvent, handler: Callable[..., Any], *args: Any) -> None:
        """``engine.add_event_handler(event, handler, *args)``, remembered."""
        engine.add_event_handler(event, handler, *args)
        self.attached.append((engine, event, handler))

    def remove(self) -> None:
        """Remove every handler added (those already gone are skipped)."""
        for engine, event, handler in self.attached:
            for each in event if isinstance(event, EventsList) else [event]:
                if engine.has_event_handler(handler, each):
                    engine.remove_event_handler(handler, each)
        self.attached.clear()

    def __bool__(self) -> bool:
        return bool(self.attached)


def add_for_each_event(handlers: Handlers, engine: Engine, event: EngineEvent,
                       handler: Callable[[Engine, Any], None]) -> None:
    """Attach ``handler(engine, fired)`` at every single event of ``event`` (``A | B`` or one event), so the
    handler knows which one fired (``engine.last_event_name`` does not: a custom event fired by an earlier
    handler of the same event, like ``VALIDATION_COMPLETED``, replaces it)."""
    for each in event if isinstance(event, EventsList) else [event]:
        handlers.add(engine, each, handler, each)


def ends_epoch_next(engine: Engine, fired: Any) -> bool:
    """Whether ``fired`` is ``ITERATION_COMPLETED`` of an epoch's last iteration (``EPOCH_COMPLETED`` follows).

    Example:
        >>> trainer = Engine(lambda engine, batch: None)
        >>> seen = []
        >>> _ = trainer.add_event_handler(Events.ITERATION_COMPLETED,
        ...                               lambda e: seen.append(ends_epoch_next(e, Events.ITERATION_COMPLETED)))
        >>> _ = trainer.run(range(3), max_epochs=1)
        >>> seen
        [False, False, True]
    """
    length = engine.state.epoch_length
    return bool(fired == Events.ITERATION_COMPLETED and length and engine.state.iteration % length == 0)


ExceptionCallback = Callable[[Engine, BaseException], None]

_HANDLED = "_ignite_mnist_exception_handled"
_CALLBACKS: weakref.WeakKeyDictionary[Engine, list[ExceptionCallback]] = weakref.WeakKeyDictionary()


def _call_all_then_raise(engine: Engine, error: BaseException) -> None:
    # Ignite hands an error raised inside an iteration to EXCEPTION_RAISED twice (once per loop level)
    if not getattr(error, _HANDLED, False):
        with contextlib.suppress(AttributeError):  # an exception type without a __dict__ is just reported twice
            setattr(error, _HANDLED, True)
        for callback in list(_CALLBACKS.get(engine, ())):
            callback(engine, error)
    raise error


def on_exception(engine: Engine, callback: ExceptionCallback) -> Callable[[], None]:
    """Call ``callback(engine, error)`` when ``engine.run`` raises; the error still propagates.

    Returns:
        What removes the callback again.
    """
    if engine not in _CALLBACKS:
        _CALLBACKS[engine] = []
        engine.add_event_handler(Events.EXCEPTION_RAISED, _call_all_then_raise)
    _CALLBACKS[engine].append(callback)

    def remove() -> None:
        with contextlib.suppress(ValueError):
            _CALLBACKS.get(engine, []).remove(callback)

    return remove
