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
    >>> on_exception(trainer, lambda engine, error: seen.append(str(error)))
    >>> on_exception(trainer, lambda engine, error: seen.append("second"))
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

from ignite.engine import Engine, EventEnum, Events

__all__ = ["ValidationEvents", "on_exception"]


class ValidationEvents(EventEnum):
    """Events :func:`~ignite_mnist.handlers.attach_validation` registers on the trainer."""

    #: fired on the trainer right after the validation metrics were copied into its state
    VALIDATION_COMPLETED = "validation_completed"


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


def on_exception(engine: Engine, callback: ExceptionCallback) -> None:
    """Call ``callback(engine, error)`` when ``engine.run`` raises; the error still propagates."""
    if engine not in _CALLBACKS:
        _CALLBACKS[engine] = []
        engine.add_event_handler(Events.EXCEPTION_RAISED, _call_all_then_raise)
    _CALLBACKS[engine].append(callback)
