"""Test-only driver: run ``ignite-mnist`` and SIGKILL it (or fill its disk) at one exact point, or list the points.

    python tests/faults/kill_driver.py record OUT.json -- <train flags>   # run, write every point passed
    python tests/faults/kill_driver.py kill POINT -- <train flags>        # run, SIGKILL at POINT
    python tests/faults/kill_driver.py fill POINT -- <train flags>        # run, fill the output disk at POINT

A point is ``<where>#<n>``: the n-th time the run passes ``<where>``. The places:

* ``trainer:<event>`` / ``evaluator:<event>``: after every handler of that engine
  event ran (the driver's handler is attached last, through ``run(attach=...)``);
* ``write:<step>``: the steps of every file write: ``torch.save:half`` (half the
  checkpoint's bytes written, then killed), ``replace:before`` / ``replace:after`` (the
  atomic rename of a checkpoint or a JSON file), ``append:half`` (half a
  ``metrics.jsonl`` row written), ``figure:before`` (a plot about to be saved);
* ``phase:<name>``: ``test`` (the final test is about to start) and ``summary:after``.

Spies call through and change nothing until their point comes; then the process
dies with SIGKILL, as on a power cut, with no chance to clean up, or (``fill``)
the file system of ``--output-dir`` is filled to the last byte and the run goes on
into a real "No space left on device". The run itself is ``ignite-mnist``'s own
``main``. Used by ``tests/faults/test_kill_points.py``.

Under ``torchrun`` (``torchrun ... kill_driver.py kill POINT -- <flags>``) only the rank
``$KILL_DRIVER_RANK`` names dies, and only in torchrun's first attempt
(``$TORCHELASTIC_RESTART_COUNT`` 0): the restarted job runs to its end
(``tests/test_elastic.py``).
"""

from __future__ import annotations

import collections
import functools
import json
import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from ignite.engine import Events

import ignite_mnist.handlers.metrics_log as metrics_log
import ignite_mnist.training.managed as training
import ignite_mnist.training.plots as plots
from ignite_mnist.cli import main as cli_main
from ignite_mnist.events import ValidationEvents
from ignite_mnist.storage.run_dir import RunDir

#: Under torchrun: the rank that dies at the point (unset: every process that reaches it).
KILL_RANK = "KILL_DRIVER_RANK"
TRAINER_EVENTS = (Events.STARTED, Events.EPOCH_STARTED, Events.ITERATION_COMPLETED, Events.EPOCH_COMPLETED,
                  ValidationEvents.VALIDATION_COMPLETED, Events.COMPLETED)
EVALUATOR_EVENTS = (Events.COMPLETED,)


def fill(folder: Path) -> None:
    """Take every free byte of the file system ``folder`` is on."""
    with open(folder / "filler", "wb") as handle:
        try:
            while True:
                handle.write(bytes(1 << 16))
                handle.flush()
        except OSError:
            pass


class Points:
    """Counts the places a run passes; at the chosen point kills the process (or fills its disk); records all."""

    def __init__(self, target: str | None, output: Path | None = None) -> None:
        self.target = target
        self.output = output  # set: fill this folder's disk instead of killing
        self.counts: collections.Counter[str] = collections.Counter()
        self.passed: list[str] = []

    def reached(self, where: str, before_death: Callable[[], None] | None = None) -> None:
        self.counts[where] += 1
        point = f"{where}#{self.counts[where]}"
        self.passed.append(point)
        if point != self.target:
            return
        if self.output is not None:
            fill(self.output)
            return
        if before_death is not None:
            before_death()
        os.kill(os.getpid(), signal.SIGKILL)


def spy_on_writes(points: Points) -> None:
    """Wrap the writes a run does: checkpoints (torch.save, os.replace), JSON files, metrics rows, plots."""
    save, replace, append, save_figure = torch.save, os.replace, metrics_log.append_line, plots.save_figure

    def torch_save(obj: Any, f: Any, *args: Any, **kwargs: Any) -> None:
        def write_half() -> None:
            import io
            buffer = io.BytesIO()
            save(obj, buffer, *args, **kwargs)
            data = buffer.getvalue()
            if hasattr(f, "write"):
                f.write(data[: len(data) // 2])
                f.flush()
            else:
                Path(f).write_bytes(data[: len(data) // 2])
        points.reached("write:torch.save:half", write_half)
        save(obj, f, *args, **kwargs)

    def os_replace(source: Any, target: Any, *args: Any, **kwargs: Any) -> None:
        points.reached("write:replace:before")
        replace(source, target, *args, **kwargs)
        points.reached("write:replace:after")

    def append_line(path: Any, line: str) -> None:
        points.reached("write:append:half", lambda: append(path, line[: len(line) // 2]))
        append(path, line)

    def figure(*args: Any, **kwargs: Any) -> Path:
        points.reached("write:figure:before")
        return save_figure(*args, **kwargs)

    torch.save, os.replace, metrics_log.append_line, plots.save_figure = torch_save, os_replace, append_line, figure


def spy_on_phases(points: Points) -> None:
    test_and_report, write_summary = training.test_and_report, RunDir.write_summary

    def testing(*args: Any, **kwargs: Any) -> Any:
        points.reached("phase:test")
        return test_and_report(*args, **kwargs)

    def summary(self: RunDir, values: dict[str, Any]) -> None:
        write_summary(self, values)
        points.reached("phase:summary:after")

    training.test_and_report, RunDir.write_summary = testing, summary


def engine_spies(points: Points) -> Callable[[Any], None]:
    """The ``run(attach=...)`` hook: a handler after all others on every event of trainer and evaluator."""

    def attach(parts: Any) -> None:
        for engine, name, events in ((parts.trainer, "trainer", TRAINER_EVENTS),
                                     (parts.evaluator, "evaluator", EVALUATOR_EVENTS)):
            for event in events:
                engine.add_event_handler(event, lambda _, where=f"{name}:{event.name}": points.reached(where))

    return attach


def armed() -> bool:
    """Whether this process dies (or fills the disk) at its point: not in a torchrun restart, not on another rank."""
    rank = os.environ.get(KILL_RANK)
    first_attempt = os.environ.get("TORCHELASTIC_RESTART_COUNT", "0") == "0"
    return first_attempt and (rank is None or rank == os.environ.get("RANK"))


def main(argv: list[str]) -> int:
    mode, argument, separator, *flags = argv
    assert separator == "--", "usage: kill_driver.py record OUT.json|kill POINT|fill POINT -- <train flags>"
    output = Path(flags[flags.index("--output-dir") + 1]) if mode == "fill" else None
    points = Points(argument if mode != "record" and armed() else None, output)
    spy_on_writes(points)
    spy_on_phases(points)
    training.run = functools.partial(training.run, attach=engine_spies(points))
    code = cli_main(flags)
    if mode == "record":
        Path(argument).write_text(json.dumps(points.passed))
    return code


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
