"""Per-iteration cost of every handler ``training.run`` attaches to the trainer.

Runs ``training.run`` (tutorial MLP, defaults, W&B and plots off) with each
handler registered on the trainer's per-iteration events wrapped in a timer,
and prints one JSON object: microseconds per call of each handler, the
run's samples/s and the mean time of one whole iteration, so each handler's
share can be read off.

Usage:
    python benchmarks/handler_overhead.py --data-dir /work/shared/data --epochs 1 --threads 1
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import json
import os
import sys
import tempfile
import time
from typing import Any

import torch
from ignite.engine import Engine, Events

from ignite_mnist import TrainConfig
from ignite_mnist.training import managed as training
from ignite_mnist.training import parts

PER_ITERATION = (Events.ITERATION_STARTED, Events.ITERATION_COMPLETED, Events.GET_BATCH_STARTED,
                 Events.GET_BATCH_COMPLETED)


def _name(event: Any, handler: Any) -> str:
    return f"{event.name}:{getattr(handler, '__qualname__', None) or type(handler).__name__}"


def timed_run(config: TrainConfig) -> tuple[training.Summary, dict[str, float], int]:
    """``training.run`` with the trainer's per-iteration handlers timed; returns summary, us/call, iterations."""
    seconds: dict[str, float] = collections.defaultdict(float)
    calls: collections.Counter[str] = collections.Counter()
    create_trainer = parts.create_trainer

    def wrap_handlers(engine: Engine) -> None:  # at STARTED every handler is attached
        for event, handlers in list(engine._event_handlers.items()):
            if event not in PER_ITERATION:
                continue
            wrapped = []
            for handler, args, kwargs in handlers:
                def timed(*a: Any, _handler: Any = handler, _name: str = _name(event, handler), **k: Any) -> Any:
                    started = time.perf_counter()
                    result = _handler(*a, **k)
                    seconds[_name] += time.perf_counter() - started
                    calls[_name] += 1
                    return result
                wrapped.append((timed, args, kwargs))
            engine._event_handlers[event] = wrapped

    def spying_create_trainer(*args: Any, **kwargs: Any) -> Engine:
        trainer = create_trainer(*args, **kwargs)
        trainer.add_event_handler(Events.STARTED, wrap_handlers)
        return trainer

    parts.create_trainer = spying_create_trainer
    try:
        with contextlib.redirect_stdout(sys.stderr):
            summary = training.run(config)
    finally:
        parts.create_trainer = create_trainer
    iterations = max(calls.values()) if calls else 0
    return summary, {name: seconds[name] / calls[name] * 1e6 for name in seconds}, iterations


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", default=os.environ.get("IGNITE_MNIST_DATA_DIR", "./data"))
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as output_dir:
        config = TrainConfig(data_dir=args.data_dir, epochs=args.epochs, output_dir=output_dir, progress="log",
                             tracker=["none"], plots=False, device="cpu")
        summary, per_call, iterations = timed_run(config)
    iteration_us = summary.train_seconds / max(iterations, 1) * 1e6
    result = {
        "handler_us_per_iteration": {k: round(v, 1) for k, v in sorted(per_call.items(), key=lambda kv: -kv[1])},
        "all_handlers_us_per_iteration": round(sum(per_call.values()), 1),
        "iteration_us": round(iteration_us, 1),
        "samples_per_second": summary.samples_per_second,
        "threads": args.threads,
        "load_average": os.getloadavg(),
    }
    print(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
