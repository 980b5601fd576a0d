"""``--threads auto`` against fixed counts, on a quiet machine and on a loaded one, in one run.

Each contender is the whole default training command (the tutorial recipe, here
``--epochs 1`` unless ``--epochs`` says otherwise; W&B off, no plots) with
``--threads auto``, ``1`` and one per core (torch's default, the old behaviour).
"Loaded" means one extra CPU-bound process that this script starts itself (a
Python busy loop) for the duration of the row, as another job on a shared
machine would. The contenders are interleaved (quiet and loaded, every thread
setting, then again) and each cell is the median of ``--repeats`` runs.

Printed: per condition and setting, the median training samples/s (from
``summary.json``), the median seconds of the whole command, what ``auto`` chose,
and each setting's speed as a ratio of the best fixed setting of that condition.

Usage:
    python benchmarks/threads.py --data-dir /work/shared/data --repeats 3
    python benchmarks/threads.py --recipe one-epoch     # the same for a CNN recipe
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

BUSY_LOOP = "while True: pass"


@contextlib.contextmanager
def condition(name: str) -> Iterator[None]:
    """``quiet``: nothing else; ``loaded``: one busy process of our own for the duration."""
    busy = subprocess.Popen([sys.executable, "-c", BUSY_LOOP]) if name == "loaded" else None
    try:
        if busy is not None:
            time.sleep(1.0)  # let the scheduler see it before the contender starts
        yield
    finally:
        if busy is not None:
            busy.kill()
            busy.wait()


def run_once(threads: str, args: argparse.Namespace, output_dir: str) -> dict[str, Any]:
    env = {key: value for key, value in os.environ.items() if key != "OMP_NUM_THREADS"}  # auto must decide
    command = [sys.executable, "-m", "ignite_mnist", "--recipe", args.recipe, "--data-dir", args.data_dir,
               "--output-dir", output_dir, "--run-name", "r", "--overwrite", "--tracker", "none", "--no-plots",
               "--progress", "none", "--threads", threads, "--val-size", str(args.val_size)]
    if args.epochs:
        command += ["--epochs", str(args.epochs)]
    started = time.perf_counter()
    subprocess.run(command, check=True, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wall = time.perf_counter() - started
    summary = json.loads((Path(output_dir) / "r" / "summary.json").read_text())
    chosen = json.loads((Path(output_dir) / "r" / "config.json").read_text())["threads"]
    return {"samples_per_second": summary["samples_per_second"], "wall_seconds": wall, "chose": chosen}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", default=os.environ.get("IGNITE_MNIST_DATA_DIR", "./data"))
    parser.add_argument("--recipe", default="tutorial")
    parser.add_argument("--epochs", type=int, default=1, help="epochs of each run (0: the recipe's own)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--val-size", type=int, default=5000)
    args = parser.parse_args(argv)
    cores = len(os.sched_getaffinity(0))
    settings = ["auto", "1", str(cores)]
    results: dict[tuple[str, str], list[dict[str, Any]]] = {}
    with tempfile.TemporaryDirectory() as output_dir:
        for repeat in range(args.repeats):
            for name in ("quiet", "loaded"):
                with condition(name):
                    for threads in settings:
                        row = run_once(threads, args, output_dir)
                        results.setdefault((name, threads), []).append(row)
                        print(json.dumps({"repeat": repeat, "condition": name, "threads": threads, **row}),
                              file=sys.stderr, flush=True)
    print(f"\n{args.recipe}, {args.epochs or 'all'} epoch(s), {cores} cores, median of {args.repeats}\n")
    print("| condition | --threads | samples/s | whole command s | auto chose | speed / best fixed |")
    print("| --- | --- | --- | --- | --- | --- |")
    for name in ("quiet", "loaded"):
        speed = {t: statistics.median(r["samples_per_second"] for r in results[(name, t)]) for t in settings}
        best_fixed = max(speed[t] for t in settings[1:])
        for threads in settings:
            rows = results[(name, threads)]
            chose = ",".join(r["chose"] for r in rows) if threads == "auto" else ""
            print(f"| {name} | {threads} | {speed[threads]:,.0f} | "
                  f"{statistics.median(r['wall_seconds'] for r in rows):.1f} | {chose} | "
                  f"{speed[threads] / best_fixed:.2f} |")


if __name__ == "__main__":
    main()
