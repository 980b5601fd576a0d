"""Stop training at the first NaN or infinite loss, and remember where it happened.

What Ignite's ``TerminateOnNan`` does for a scalar loss tensor, with one
``.item()`` instead of its generic ``apply_to_type`` + ``isfinite().all()``:
measured on the busy 2-core benchmark machine, ~525 microseconds per iteration
for ``TerminateOnNan`` (about 5 % of a tutorial-MLP step there) against a few
for this. The returned :class:`NonFiniteLossStop` is the one place that knows
whether and where the loss stopped being finite.

Example:
    >>> from ignite.engine import Engine
    >>> trainer = Engine(lambda engine, batch: torch.tensor(batch))
    >>> stop = attach_nan_stop(trainer)
    >>> trainer.run([1.0, float("nan"), 2.0], max_epochs=1).iteration
    2
    >>> stop.tripped, stop.iteration, stop.value
    (True, 2, nan)
"""

from __future__ import annotations

import math
from typing import Any

import torch
from ignite.engine import Engine, Events
from ignite.engine.events import RemovableEventHandle

from ignite_mnist.events import EngineEvent

__all__ = ["NonFiniteLossStop", "attach_nan_stop"]


class NonFiniteLossStop:
    """Terminates the engine when its output (the batch loss) is NaN or infinite.

    Attributes:
        iteration: the iteration whose loss was not finite (None while all were).
        value: that loss.
    """

    def __init__(self) -> None:
        self.iteration: int | None = None
        self.value: float | None = None
        self.handle: RemovableEventHandle | None = None

    @property
    def tripped(self) -> bool:
        return self.iteration is not None

    def __call__(self, engine: Engine) -> None:
        output: Any = engine.state.output  # Ignite types it as an int; the train step's loss, a tensor or a float
        value = output.item() if isinstance(output, torch.Tensor) else float(output)
        if not math.isfinite(value):
            self.iteration, self.value = engine.state.iteration, value
            engine.terminate()

    def detach(self) -> None:
        if self.handle is not None:
            self.handle.remove()


def attach_nan_stop(trainer: Engine, *, event: EngineEvent = Events.ITERATION_COMPLETED) -> NonFiniteLossStop:
    """Stop ``trainer`` at its first non-finite loss (``state.output``, a scalar tensor or number), checked at
    ``event``; ``.detach()`` removes it."""
    stop = NonFiniteLossStop()
    stop.handle = trainer.add_event_handler(event, stop)
    return stop
