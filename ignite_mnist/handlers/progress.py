"""Progress display that suits where the output goes.

On a terminal, and in a Jupyter notebook (where tqdm draws it as a widget): Ignite's
``ProgressBar`` for the trainer, with the running loss, and for each evaluator; each
bar is cleared when it is done, and each finished epoch leaves one line with its
metrics above the next bar (``ProgressBar.log_message``, i.e. ``tqdm.write``), as Keras does. Elsewhere
(CI, ``nohup``, a log file): plain log lines, at most one every ``interval``
seconds plus one per epoch and one per evaluation within an epoch (an epoch's own
line holds the validation it ended with), and never a carriage return.
Ignite has no such log mode; it is written here.

Example:
    >>> from ignite.engine import Engine
    >>> trainer = Engine(lambda engine, batch: None)
    >>> progress = attach_progress(trainer, mode="log", interval=3600)
    >>> _ = trainer.run(range(5), max_epochs=2)
    epoch 1/2 done
    epoch 2/2 done
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TextIO

import torch
from ignite.engine import Engine, Events
from ignite.engine.events import RemovableEventHandle
from ignite.handlers import ProgressBar
from ignite.handlers.base_logger import BaseLogger

from ignite_mnist.console import say
from ignite_mnist.events import Handlers, on_exception
from ignite_mnist.registry import PROGRESS_MODES

__all__ = [
    "LogProgress", "Progress", "attach_progress", "batch_loss", "epoch_line", "in_jupyter", "resolve_progress_mode",
]


def in_jupyter() -> bool:
    """Whether this is a Jupyter kernel, where Ignite's ``ProgressBar`` (``tqdm.autonotebook``) draws widgets.

    Example:
        >>> in_jupyter()
        False
    """
    ipython = sys.modules.get("IPython")
    return ipython is not None and type(ipython.get_ipython()).__name__ == "ZMQInteractiveShell"


def resolve_progress_mode(mode: str, stream: TextIO | None = None) -> str:
    """``auto`` becomes ``bar`` when both stdout and stderr are terminals or in a Jupyter notebook, else ``log``."""
    if mode not in PROGRESS_MODES:
        raise ValueError(f"progress mode must be one of {', '.join(PROGRESS_MODES)}, got {mode!r}")
    if mode != "auto":
        return mode
    streams = [stream] if stream is not None else [sys.stdout, sys.stderr]
    return "bar" if all(s.isatty() for s in streams) or (stream is None and in_jupyter()) else "log"


def batch_loss(output: Any) -> dict[str, float]:
    """The trainer's output as ``{"loss": value}`` when it is one number (a float or a one-element tensor), else ``{}``.

    Example:
        >>> batch_loss(torch.tensor(0.25)), batch_loss((1, 2))
        ({'loss': 0.25}, {})
    """
    if isinstance(output, torch.Tensor) and output.numel() == 1:
        return {"loss": float(output)}
    return {"loss": float(output)} if isinstance(output, (int, float)) else {}


def _format_metrics(metrics: dict[str, Any]) -> str:
    return "  ".join(f"{name} {value:.4f}" for name, value in metrics.items() if isinstance(value, (int, float)))


def epoch_line(engine: Engine) -> str:
    """The line a finished epoch leaves: its number and the trainer's metrics (the running loss left out).

    Example:
        >>> trainer = Engine(lambda engine, batch: None)
        >>> trainer.state.epoch, trainer.state.max_epochs = 1, 2
        >>> trainer.state.metrics = {"loss": 0.3, "train_loss": 0.25, "val_accuracy": 0.9}
        >>> epoch_line(trainer)
        'epoch 1/2 done  train_loss 0.2500  val_accuracy 0.9000'
    """
    shown = {k: v for k, v in engine.state.metrics.items() if k != "loss"}
    return f"epoch {engine.state.epoch}/{engine.state.max_epochs} done  {_format_metrics(shown)}".rstrip()


class LogProgress:
    """Log lines for a trainer: rate-limited per iteration, one per epoch, one per evaluation.

    Args:
        interval: the least number of seconds between two iteration lines.
        stream: where to write (default stdout).
    """

    def __init__(self, interval: float = 10.0, stream: TextIO | None = None) -> None:
        if interval < 0:
            raise ValueError(f"interval must be >= 0, got {interval}")
        self.interval = interval
        self.stream = stream
        self._last_line = 0.0
        self._last_iteration = 0

    def _write(self, line: str) -> None:
        say(line, self.stream)

    def _where(self, engine: Engine) -> str:
        length = engine.state.epoch_length or 0
        in_epoch = (engine.state.iteration - 1) % length + 1 if length else engine.state.iteration
        return f"epoch {engine.state.epoch}/{engine.state.max_epochs}  iteration {in_epoch}/{length}"

    def started(self, engine: Engine) -> None:
        self._last_line = time.monotonic()
        self._last_iteration = engine.state.iteration

    def iteration_completed(self, engine: Engine) -> None:
        now = time.monotonic()
        if now - self._last_line < self.interval:
            return
        rate = (engine.state.iteration - self._last_iteration) / max(now - self._last_line, 1e-9)
        loss = engine.state.metrics.get("loss", batch_loss(engine.state.output).get("loss"))
        loss_text = f"  loss {float(loss):.4f}" if loss is not None else ""
        self._write(f"{self._where(engine)}{loss_text}  {rate:.0f} it/s")
        self._last_line, self._last_iteration = now, engine.state.iteration

    def epoch_completed(self, engine: Engine) -> None:
        self._write(epoch_line(engine))

    def evaluation_completed(self, name: str, trainer: Engine | None = None) -> Any:
        """A handler writing ``name: <metrics>`` when an evaluator completes; with ``trainer``, not at the end
        of one of its epochs (the epoch's line that follows holds the same numbers)."""

        def log(evaluator: Engine) -> None:
            length = trainer.state.epoch_length if trainer is not None else None
            if length and trainer.state.iteration % length == 0:  # type: ignore[union-attr]
                return
            self._write(f"{name}: {_format_metrics(evaluator.state.metrics)}")

        return log


class _HandlesRecorded(BaseLogger):
    """Keeps the handle of every handler Ignite's ``ProgressBar.attach`` adds through ``BaseLogger.attach``
    (it comes between the two in the bar's class order), so the bar can be detached."""

    def attach(self, engine: Engine, log_handler: Callable[..., Any], event_name: Any, *args: Any, **kwargs: Any
               ) -> RemovableEventHandle:
        handle: RemovableEventHandle = super().attach(engine, log_handler, event_name, *args, **kwargs)
        self.__dict__.setdefault("handles", []).append(handle)
        return handle


class _Bar(ProgressBar, _HandlesRecorded):  # type: ignore[misc]  # each attach has its own signature, by design
    """Ignite's ``ProgressBar``, detachable: :meth:`remove` takes its handlers off (the bar stops moving)."""

    def remove(self) -> None:
        for handle in self.__dict__.pop("handles", []):
            handle.remove()


@dataclass
class Progress:
    """What :func:`attach_progress` attached: the mode it chose and its displays.

    Attributes:
        mode: ``bar``, ``log`` or ``none`` (``auto`` resolved).
        bars: Ignite ``ProgressBar`` objects (``bar`` mode), trainer first.
        log: the :class:`LogProgress` (``log`` mode).
    """

    mode: str
    bars: list[_Bar] = field(default_factory=list)
    log: LogProgress | None = None
    handlers: Handlers = field(default_factory=Handlers)

    def detach(self) -> None:
        """Stop the bars, the log lines and the epoch lines."""
        self.handlers.remove()
        for bar in self.bars:
            bar.remove()


def _clear(bars: list[_Bar]) -> None:
    """Take the bars still shown off the screen (an error or an interrupt stopped them mid-way)."""
    for bar in reversed(bars):
        if bar.pbar is not None:
            bar.pbar.close()  # persist=False: tqdm clears its line
            bar.pbar = None


def attach_progress(
    trainer: Engine,
    evaluators: dict[str, Engine] | None = None,
    *,
    mode: str = "auto",
    interval: float = 10.0,
    metric_names: list[str] | None = None,
) -> Progress:
    """Show the progress of ``trainer`` (and named ``evaluators``) as ``mode`` says.

    Args:
        trainer: the training engine; its ``state.metrics["loss"]`` is shown if present,
            else its output when that is one number (the batch loss).
        evaluators: e.g. ``{"validation": evaluator}``.
        mode: ``auto`` (bars on a terminal, log lines otherwise), ``bar``, ``log`` or ``none``.
        interval: seconds between log lines in ``log`` mode.
        metric_names: trainer metrics the bar shows, e.g. ``["loss"]`` (default: the batch loss).

    Returns:
        The :class:`Progress` attached (``.detach()`` removes it).
    """
    evaluators = evaluators or {}
    mode = resolve_progress_mode(mode)
    if mode == "none":
        return Progress(mode)
    if mode == "bar":
        bars = [_Bar(persist=False)]
        bars[0].attach(trainer, metric_names=metric_names, output_transform=None if metric_names else batch_loss)
        # the epoch's bar is cleared (persist=False); its line stays, written above the next one (tqdm.write)
        progress = Progress(mode, bars=bars)
        progress.handlers.add(trainer, Events.EPOCH_COMPLETED, lambda engine: bars[0].log_message(epoch_line(engine)))
        for name, evaluator in evaluators.items():
            bar = _Bar(persist=False, desc=name)
            bar.attach(evaluator)
            bars.append(bar)
        on_exception(trainer, lambda engine, error: _clear(bars))  # what is said next starts on a clean line
        return progress
    log = LogProgress(interval)
    progress = Progress(mode, log=log)
    handlers = progress.handlers
    handlers.add(trainer, Events.STARTED, log.started)
    handlers.add(trainer, Events.ITERATION_COMPLETED, log.iteration_completed)
    handlers.add(trainer, Events.EPOCH_COMPLETED, log.epoch_completed)
    for name, evaluator in evaluators.items():
        handlers.add(evaluator, Events.COMPLETED, log.evaluation_completed(name, trainer))
    return progress

