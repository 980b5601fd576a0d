"""Start-up and wind-down: a training command's wall time next to its own training time.

Runs the command line a new user runs (``python -m ignite_mnist --recipe one-epoch``
by default) as a fresh process, ``--repeats`` times for each variant, the variants
interleaved so that a change in the machine's load hits them alike. Each run's wall
time is measured around the whole process (start to exit, imports included); its
training time is the ``train_seconds`` of its ``summary.json``. Printed: each run, then
per variant the medians of wall time, training time and the ratio wall / train. W&B runs offline into a temporary
folder, as on a machine without W&B credentials.

Example:
    $ python benchmarks/startup.py --data-dir /work/shared/data --repeats 5
    $ python benchmarks/startup.py --data-dir /work/shared/data --variant "" --variant "--tracker none --no-plots"
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

#: The command timed, before each variant's own flags.
COMMAND = [sys.executable, "-m", "ignite_mnist", "--recipe", "one-epoch", "--progress", "log"]
DEFAULT_VARIANTS = ["", "--tracker none --no-plots"]


def one_run(args: list[str], out: Path, name: str) -> tuple[float, float, float]:
    """(wall seconds, train seconds, load average at the start) of one fresh process."""
    env = os.environ | {"WANDB_MODE": "offline"}
    env |= {var: str(out / "wandb-home") for var in ("WANDB_DIR", "WANDB_CACHE_DIR", "WANDB_CONFIG_DIR",
                                                     "WANDB_DATA_DIR")}
    load = os.getloadavg()[0]
    started = time.perf_counter()
    result = subprocess.run([*COMMAND, *args, "--output-dir", str(out), "--run-name", name],
                            env=env, capture_output=True, text=True)
    wall = time.perf_counter() - started
    if result.returncode != 0:
        sys.exit(f"{shlex.join(args)} failed ({result.returncode}): {result.stderr.strip()}")
    summary = json.loads((out / name / "summary.json").read_text())
    return wall, summary["train_seconds"], load


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", required=True, help="dataset root holding MNIST/raw/")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--variant", action="append", help="extra flags of one variant (repeatable; default: "
                        + " and ".join(repr(v) for v in DEFAULT_VARIANTS) + ")")
    args = parser.parse_args()
    variants = args.variant or DEFAULT_VARIANTS
    times: dict[str, list[tuple[float, float, float]]] = {variant: [] for variant in variants}
    print(f"command: {shlex.join(COMMAND[1:])} --data-dir {args.data_dir} [variant]; {os.cpu_count()} CPUs")
    with tempfile.TemporaryDirectory() as tmp:
        for repeat in range(args.repeats):
            for number, variant in enumerate(variants):
                wall, train, load = one_run([*shlex.split(variant), "--data-dir", args.data_dir], Path(tmp),
                                            f"run-{repeat}-{number}")
                times[variant].append((wall, train, load))
                print(f"  repeat {repeat} {variant or '(defaults)'!s:<28} wall {wall:6.2f} s  train {train:6.2f} s  "
                      f"ratio {wall / train:.2f}  (load {load:.1f})", flush=True)
    print("medians:")
    for variant, rows in times.items():
        wall, train = (statistics.median(row[i] for row in rows) for i in (0, 1))
        ratio = statistics.median(row[0] / row[1] for row in rows)
        print(f"  {variant or '(defaults)'!s:<28} wall {wall:6.2f} s  train {train:6.2f} s  ratio {ratio:.2f}  "
              f"(median of {len(rows)}; load {statistics.median(row[2] for row in rows):.1f})")


if __name__ == "__main__":
    main()
