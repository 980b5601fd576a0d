"""Test accuracy and time of a recipe over several seeds, each a real ``ignite-mnist`` run.

Each seed is one training command (``python -m ignite_mnist --recipe R --seed S``,
W&B off, no plots) in a fresh process; its ``summary.json`` gives the test
accuracy (of the best checkpoint, as always) and the training seconds, and the
parent times the whole command and the CPU time it used (user + system: on a
shared machine the wall time says more about the other jobs than about the run).
One row per seed as JSON lines while it runs (with the load average at its end),
then the table and the mean, minimum and median.

Usage:
    python benchmarks/recipe_seeds.py --recipe best --seeds 0 1 2 3 4
    python benchmarks/recipe_seeds.py --recipe mlp-best --threads 1 --output-dir /tmp/seeds
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any


def _children_cpu_seconds() -> float:
    """User + system CPU time of the finished child processes: on a shared machine, what a run cost itself."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_seed(recipe: str, seed: int, args: argparse.Namespace) -> dict[str, Any]:
    """One training run; its summary, wall time and the thread count it used."""
    name = f"{recipe}-seed{seed}"
    command = [sys.executable, "-m", "ignite_mnist", "--recipe", recipe, "--seed", str(seed),
               "--data-dir", args.data_dir, "--output-dir", args.output_dir, "--run-name", name, "--overwrite",
               "--tracker", "none", "--no-plots", "--progress", "none", "--threads", args.threads]
    started, cpu_before = time.perf_counter(), _children_cpu_seconds()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    wall, cpu = time.perf_counter() - started, _children_cpu_seconds() - cpu_before
    run_dir = Path(args.output_dir) / name
    summary = json.loads((run_dir / "summary.json").read_text())
    config = json.loads((run_dir / "config.json").read_text())
    return {"recipe": recipe, "seed": seed, "test_accuracy": summary["test_accuracy"],
            "train_seconds": summary["train_seconds"], "wall_seconds": round(wall, 1), "cpu_seconds": round(cpu, 1),
            "threads": config["threads"], "load_average": round(os.getloadavg()[0], 2)}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--recipe", required=True)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--threads", default="auto", help="--threads of every run (default: auto)")
    parser.add_argument("--data-dir", default=os.environ.get("IGNITE_MNIST_DATA_DIR", "./data"))
    parser.add_argument("--output-dir", default="runs/recipe-seeds")
    args = parser.parse_args(argv)
    rows = []
    for seed in args.seeds:
        rows.append(run_seed(args.recipe, seed, args))
        print(json.dumps(rows[-1]), flush=True)
    accuracies = [row["test_accuracy"] for row in rows]
    print("\n| seed | test accuracy | training s | whole command s | its CPU s | threads | load |\n"
          "| --- | --- | --- | --- | --- | --- | --- |")
    for row in rows:
        print(f"| {row['seed']} | {row['test_accuracy'] * 100:.2f} % | {row['train_seconds']:.0f} | "
              f"{row['wall_seconds']:.0f} | {row['cpu_seconds']:.0f} | {row['threads']} | {row['load_average']} |")
    print(f"\n{args.recipe}: mean {statistics.mean(accuracies) * 100:.3f} %, min {min(accuracies) * 100:.2f} %, "
          f"max {max(accuracies) * 100:.2f} %; whole command median "
          f"{statistics.median(row['wall_seconds'] for row in rows):.0f} s, longest "
          f"{max(row['wall_seconds'] for row in rows):.0f} s")


if __name__ == "__main__":
    main()
