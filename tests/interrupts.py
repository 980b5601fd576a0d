"""Test-only: run the command line or an example in a real process and signal it at one exact point.

A point is where a trainer (or its evaluator) is when the process sends itself the
signal, chosen by count, never by time:

* ``iteration:N``: as the trainer starts iteration N (the signal lands during it);
* ``validation:N``: as the evaluator starts its N-th batch, counted over the whole run;
* ``saved:N``: as the N-th checkpoint file of the run has just been written (inside the save).

The processes are forks of a fork server that imported torch, Ignite and ignite-mnist
once (``multiprocessing``'s ``forkserver``), so a run costs its training, not a
Python start: each is still a process of its own, and SIGKILL kills it for real.
SIGINT and SIGTERM reach the handlers the run installs, as from a shell.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import multiprocessing
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import torch
from ignite.engine import Engine, Events
from ignite.handlers.checkpoint import CheckpointEvents

import ignite_mnist.handlers  # noqa: F401
import ignite_mnist.training.managed as managed
from ignite_mnist.cli import main as cli_main
from ignite_mnist.storage.run_dir import read_metrics_log

__all__ = ["Point", "assert_same_record", "forked", "record", "run_dir"]

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = {"custom": REPO / "examples" / "custom_trainer.py",
            "ignite_style": REPO / "examples" / "ignite_style_trainer.py"}


class Point:
    """Sends ``signum`` to this process once the run reaches ``where`` (``iteration:N``, ...)."""

    def __init__(self, where: str | None, signum: int | None) -> None:
        self.kind, _, count = (where or ":0").partition(":")
        self.count, self.signum, self.seen = int(count), signum, 0

    def reached(self, *_: Any) -> None:
        self.seen += 1
        if self.signum is not None and self.seen == self.count:
            os.kill(os.getpid(), self.signum)

    def watch(self, trainer: Engine, evaluator: Engine | None) -> None:
        if self.kind == "iteration":
            self.seen = self.count - 1
            trainer.add_event_handler(Events.ITERATION_STARTED(once=self.count), self.reached)
        elif self.kind == "validation" and evaluator is not None:
            evaluator.add_event_handler(Events.ITERATION_STARTED, self.reached)
        elif self.kind == "saved":
            trainer.register_events(*CheckpointEvents)
            trainer.add_event_handler(CheckpointEvents.SAVED_CHECKPOINT, self.reached)


def _load_example(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES[name])
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _run_example(name: str, argv: list[str], point: Point) -> int:
    module = _load_example(name)
    seen: dict[str, Engine] = {}
    attach_validation, resume_training = module.attach_validation, module.resume_training

    def validation(trainer: Engine, evaluator: Engine, *args: Any, **kwargs: Any) -> Any:
        seen["evaluator"] = evaluator
        return attach_validation(trainer, evaluator, *args, **kwargs)

    def resume(source: Any, trainer: Engine, **kwargs: Any) -> Any:
        point.watch(trainer, seen.get("evaluator"))
        return resume_training(source, trainer, **kwargs)

    module.attach_validation, module.resume_training = validation, resume
    main: Callable[..., int] = module.main if name == "custom" else lambda a: module.run(module.parse_args(a))
    return main(argv)


def _run_cli(argv: list[str], point: Point) -> int:
    def attach(parts: Any) -> None:
        point.watch(parts.trainer, parts.evaluator)

    run = managed.run
    with _replaced(managed, "run", lambda config, **kwargs: run(config, attach=attach, **kwargs)):
        return cli_main(argv)


@contextlib.contextmanager
def _replaced(module: ModuleType, name: str, value: Any) -> Iterator[None]:
    before = getattr(module, name)
    setattr(module, name, value)
    try:
        yield
    finally:
        setattr(module, name, before)


def _child(target: str, argv: list[str], where: str | None, signum: int | None, env: dict[str, str],
           log: str) -> None:
    """In the forked process: this test's W&B folders (the fork server started in an earlier test's), the run's
    output to ``log``, its exit status as the process's."""
    for name in [name for name in os.environ if name.startswith("WANDB_") and name not in env]:
        del os.environ[name]
    os.environ.update(env)
    with open(log, "ab") as handle:
        os.dup2(handle.fileno(), 1)
        os.dup2(handle.fileno(), 2)
    sys.stdout = open(1, "w", buffering=1, closefd=False)  # noqa: SIM115 - the process's own stdout
    sys.stderr = open(2, "w", buffering=1, closefd=False)  # noqa: SIM115
    point = Point(where, signum)
    code = _run_cli(argv, point) if target == "cli" else _run_example(target, argv, point)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def run_dir(target: str, output: Path) -> Path:
    return output / "r" if target == "cli" else output


def record(target: str, output: Path) -> dict[str, Any]:
    """What a run leaves: its metrics rows (timings aside), each checkpoint file's name and weights, the summary."""
    folder = run_dir(target, output)
    rows = [{k: v for k, v in row.items() if k != "seconds"} for row in read_metrics_log(folder / "metrics.jsonl")]
    files = {path.name: torch.load(path, weights_only=True)["model"]
             for path in sorted((folder / "checkpoints").iterdir())}
    summary = json.loads((folder / "summary.json").read_text()) if (folder / "summary.json").exists() else {}
    kept = ("test_accuracy", "test_loss", "best_val_accuracy", "epochs_completed", "best_checkpoint", "stopped_early")
    return {"rows": rows, "files": files, "summary": {k: summary[k] for k in kept if k in summary}}


def assert_same_record(got: dict[str, Any], expected: dict[str, Any]) -> None:
    assert got["rows"] == expected["rows"]
    assert sorted(got["files"]) == sorted(expected["files"])
    for name, weights in expected["files"].items():
        assert all(torch.equal(weights[k], got["files"][name][k]) for k in weights), name
    assert got["summary"] == expected["summary"]


def forked(target: str, argv: list[str], *, at: str | None = None, signum: int | None = None,
           env: dict[str, str] | None = None, log: Path, timeout: float = 300) -> int:
    """Run ``target`` (``cli``, ``custom`` or ``ignite_style``) with ``argv`` in a process of its own, sending it
    ``signum`` at point ``at``; its output goes to ``log``. Returns its exit status (``-9`` for SIGKILL)."""
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload([__name__])
    env = {name: value for name, value in os.environ.items() if name.startswith("WANDB_")} | dict(env or {})
    process = context.Process(target=_child, args=(target, argv, at, signum, env, str(log)))
    process.start()
    process.join(timeout)
    if process.is_alive():
        process.kill()
        process.join()
        raise TimeoutError(f"{target} {' '.join(argv)} did not end in {timeout} s; see {log}")
    assert process.exitcode is not None
    return process.exitcode


