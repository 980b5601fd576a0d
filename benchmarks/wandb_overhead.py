"""What W&B tracking costs: its fixed costs, the cost of one logged row, and (optionally) whole runs.

1. ``import wandb``, starting an offline run (``attach_wandb``), closing it;
2. 2000 iterations of a no-op Ignite trainer logging ``train/loss`` every
   iteration, against the same trainer without W&B: the cost of one row;
3. with ``--data-dir``: the same training run with ``--wandb-mode disabled``
   and ``offline``, alternately in one process, median wall time of each.

Example:
    $ python benchmarks/wandb_overhead.py
    $ python benchmarks/wandb_overhead.py --data-dir /work/shared/data --epochs 1 --repeats 2
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time

import torch
from ignite.engine import Engine

from ignite_mnist import TrainConfig, run
from ignite_mnist.handlers import attach_wandb

ROWS = 2000


def seconds(action) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def fixed_costs_and_rows() -> None:
    print(f"import wandb: {seconds(lambda: __import__('wandb')):.2f} s")
    bare = Engine(lambda engine, batch: torch.tensor(0.5))
    without = seconds(lambda: bare.run(range(ROWS), max_epochs=1))
    for attempt in ("first", "second"):
        trainer = Engine(lambda engine, batch: torch.tensor(0.5))
        holder: dict = {}

        def attach_and_start(trainer: Engine = trainer, holder: dict = holder) -> None:  # starts the W&B run
            holder["tracker"] = attach_wandb(trainer, ".", mode="offline", log_every=1)
            holder["tracker"].start()

        start = seconds(attach_and_start)
        logged = seconds(lambda trainer=trainer: trainer.run(range(ROWS), max_epochs=1))
        finish = seconds(holder["tracker"].finish)
        print(f"{attempt} run: start {start:.2f} s, {(logged - without) / ROWS * 1000:.2f} ms per logged row, "
              f"finish {finish:.2f} s")


def whole_runs(data_dir: str, epochs: int, repeats: int, out: str) -> None:
    times: dict[str, list[float]] = {"disabled": [], "offline": []}
    for repeat in range(repeats):
        for mode in times:
            config = TrainConfig.from_dict({"data_dir": data_dir, "output_dir": out, "run_name": f"{mode}-{repeat}",
                                            "epochs": epochs, "progress": "none", "wandb_mode": mode})
            times[mode].append(seconds(lambda config=config: run(config)))
    for mode, values in times.items():
        print(f"{mode:>8}: median {statistics.median(values):.2f} s  ({', '.join(f'{v:.2f}' for v in values)})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", help="also time whole training runs on this dataset root")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as out:
        os.environ.setdefault("WANDB_DIR", out)  # W&B files go to the temporary folder, not ./wandb
        fixed_costs_and_rows()
        if args.data_dir:
            whole_runs(args.data_dir, args.epochs, args.repeats, out)
    print(f"load average: {', '.join(f'{v:.1f}' for v in os.getloadavg())} on {os.cpu_count()} CPUs")


if __name__ == "__main__":
    main()
