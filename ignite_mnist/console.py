"""What ignite-mnist tells the person running it: one place that prints, and survives a closed pipe.

``ignite-mnist ... | head -n 2`` closes stdout after two lines. A training run
must not die of that (its results go to files), so :func:`say` drops output once
its stream is closed: the stream is pointed at ``/dev/null`` (as Python's
documentation recommends, so that nothing fails again when the interpreter
flushes it at exit) and :data:`closed` records that output was lost.

Example:
    >>> say("epoch 1/10 done")
    epoch 1/10 done
"""

from __future__ import annotations

import os
import sys
from typing import Any, TextIO

__all__ = ["closed", "note", "say", "say_at_line_start", "silence"]

#: The names (``stdout``/``stderr``) of the streams found closed.
closed: set[str] = set()


def silence(name: str) -> None:
    """Point the closed stream ``name`` (``stdout``/``stderr``) at ``/dev/null`` and remember it was closed."""
    _silence(name)


def _silence(name: str) -> None:
    stream = getattr(sys, name)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, stream.fileno())
    except (OSError, ValueError):  # not a real file (pytest's capture): replace the object instead
        setattr(sys, name, open(os.devnull, "w", encoding="utf-8"))  # noqa: SIM115 - lives as long as the process
    finally:
        os.close(devnull)
    closed.add(name)


def say(message: str, stream: TextIO | None = None) -> None:
    """Print ``message`` (to stdout, or ``stream``) and flush; a closed pipe drops it, and all later output.

    While a progress bar is shown the line is written above it (``tqdm.write``), so a remark made from
    another thread (a tracker starting in the background) never lands in the middle of the bar.
    """
    target = stream if stream is not None else sys.stdout
    name = "stderr" if target is sys.stderr else "stdout"
    if name in closed and stream is None:
        return
    try:
        bars = _shown_bars()
        if bars is not None:  # a progress bar is on screen: the line goes above it, not glued to it
            bars.write(message, file=target)
            target.flush()
        else:
            print(message, file=target, flush=True)
    except BrokenPipeError:
        if target in (sys.stdout, sys.stderr):
            _silence(name)


#: A carriage return, then "erase to the end of the line" (ANSI): a terminal's echo of Ctrl-C (``^C``) is wiped.
ERASE_LINE = "\r\x1b[K"


def say_at_line_start(message: str, stream: TextIO | None = None) -> None:
    """:func:`say` ``message`` at the start of its line, even right after a Ctrl-C on a terminal.

    A terminal echoes Ctrl-C as ``^C`` where its cursor stands: after a finished line,
    at the start of the next one, where the message would follow it (``^Cignite-mnist:
    interrupted ...``). On a terminal the line is erased first; elsewhere (a pipe, a
    file) nothing was echoed and the message is written as it is.
    """
    target = stream if stream is not None else sys.stdout
    try:
        on_terminal = target.isatty()
    except (OSError, ValueError):  # closed, or not a real file
        on_terminal = False
    say(f"{ERASE_LINE}{message}" if on_terminal else message, stream)


def _shown_bars() -> Any:
    """tqdm's bar class while a bar is on screen (tqdm imported by then), else None."""
    module = sys.modules.get("tqdm.std")
    bars = getattr(module, "tqdm", None)
    return bars if bars is not None and getattr(bars, "_instances", None) else None


def note(kind: str, message: str) -> None:
    """A side remark on stderr: ``ignite-mnist: <kind>: <message>`` (``info``, ``note``, ``warning``)."""
    say(f"ignite-mnist: {kind}: {message}", sys.stderr)
