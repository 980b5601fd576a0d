"""Issue 30's acceptance figures, side by side in one run: exported-model and checkpoint ``predict`` against
``import torch``, and the default one-epoch run against a bare PyTorch script of the same recipe.

Every contender is a fresh process timed from start to exit (wall clock), in rounds;
each round runs them all, in an order rotated from round to round, so that a change
in the machine's load hits them alike. Printed: each measurement with the load
average at its start, then the medians and the ratios the issue asks for:

* ``ignite-mnist predict model.onnx digit.png`` / ``python -c "import torch"`` (target <= 0.5);
* ``ignite-mnist predict RUN digit.png`` / ``python -c "import torch"`` (target <= 1.4);
* ``ignite-mnist --recipe one-epoch`` with its defaults (W&B offline, plots, ``--threads auto``) /
  ``benchmarks/bare_one_epoch.py`` at whichever of 1 or 2 threads has the lower median (target <= 0.85).

Set-up (not timed): one ``--recipe one-epoch`` run (no tracker, no plots) is the
``RUN``; ``ignite-mnist export RUN --format onnx`` writes ``model.onnx``; the first
real test digit, dark ink on white paper at 120x160 pixels, is ``digit.png``. W&B
runs offline into a temporary folder, as on a machine without W&B credentials.

Example:
    $ python benchmarks/instant.py --data-dir /work/shared/data --rounds 3
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BARE = Path(__file__).with_name("bare_one_epoch.py")
TARGETS = {"predict_onnx": 0.5, "predict_run": 1.4, "one_epoch": 0.85}


def ignite_mnist() -> list[str]:
    """The ``ignite-mnist`` command of this interpreter's environment (``python -m ignite_mnist`` without one)."""
    script = shutil.which("ignite-mnist", path=str(Path(sys.executable).parent))
    return [script] if script else [sys.executable, "-m", "ignite_mnist"]


def environment(scratch: Path) -> dict[str, str]:
    """W&B offline, its files in ``scratch``; nothing else changed (``$OMP_NUM_THREADS`` unset: ``auto`` decides)."""
    env = {key: value for key, value in os.environ.items() if key != "OMP_NUM_THREADS"}
    env["WANDB_MODE"] = "offline"
    for name in ("WANDB_DIR", "WANDB_CACHE_DIR", "WANDB_CONFIG_DIR", "WANDB_DATA_DIR"):
        env[name] = str(scratch / "wandb-home")
    return env


def timed(command: list[str], env: dict[str, str]) -> tuple[float, float, str]:
    """(wall seconds, 1-minute load average at the start, stdout) of one fresh process; exits on a failure."""
    load = os.getloadavg()[0]
    started = time.perf_counter()
    result = subprocess.run(command, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - started
    if result.returncode != 0:
        sys.exit(f"{shlex.join(command)} failed ({result.returncode}): {result.stderr.strip()[-2000:]}")
    return wall, load, result.stdout


def set_up(data_dir: str, scratch: Path, env: dict[str, str]) -> tuple[Path, Path, Path]:
    """The checkpoint run, its ONNX export and a digit image (see the module's notes)."""
    import numpy as np
    from PIL import Image

    subprocess.run([*ignite_mnist(), "--recipe", "one-epoch", "--data-dir", data_dir, "--output-dir", str(scratch),
                    "--run-name", "checkpoint", "--tracker", "none", "--no-plots", "--progress", "none"],
                   env=env, check=True)
    run_dir, onnx = scratch / "checkpoint", scratch / "model.onnx"
    subprocess.run([*ignite_mnist(), "export", str(run_dir), "--format", "onnx", "--output", str(onnx)],
                   env=env, check=True, stdout=subprocess.DEVNULL)
    raw = Path(data_dir) / "MNIST" / "raw" / "t10k-images-idx3-ubyte"
    digit = np.fromfile(raw, dtype=np.uint8, count=784, offset=16).reshape(28, 28)
    image = scratch / "digit.png"
    Image.fromarray(255 - digit).resize((120, 160)).save(image)
    return run_dir, onnx, image


def contenders(data_dir: str, scratch: Path, run_dir: Path, onnx: Path, image: Path) -> dict[str, list[str]]:
    """Name -> command line (the one-epoch run gets its own run name per round)."""
    return {
        "import_torch": [sys.executable, "-c", "import torch"],
        "predict_onnx": [*ignite_mnist(), "predict", str(onnx), str(image)],
        "predict_run": [*ignite_mnist(), "predict", str(run_dir), str(image)],
        "one_epoch": [*ignite_mnist(), "--recipe", "one-epoch", "--data-dir", data_dir, "--output-dir",
                      str(scratch / "runs"), "--progress", "none"],
        "bare_1_thread": [sys.executable, str(BARE), "--data-dir", data_dir, "--threads", "1"],
        "bare_2_threads": [sys.executable, str(BARE), "--data-dir", data_dir, "--threads", "2"],
    }


def measure(commands: dict[str, list[str]], rounds: int, env: dict[str, str]) -> dict[str, list[tuple[float, float]]]:
    """``rounds`` rounds of every command, the order rotated by one each round."""
    names = list(commands)
    times: dict[str, list[tuple[float, float]]] = {name: [] for name in names}
    for number in range(rounds):
        for name in names[number % len(names):] + names[: number % len(names)]:
            command = commands[name] + (["--run-name", f"round-{number}"] if name == "one_epoch" else [])
            wall, load, out = timed(command, env)
            times[name].append((wall, load))
            said = out.strip().splitlines()[-1] if out.strip() else ""
            print(f"  round {number} {name:<15} {wall:6.2f} s  (load {load:4.1f})  {said}", flush=True)
    return times


def report(times: dict[str, list[tuple[float, float]]]) -> None:
    medians = {name: statistics.median(wall for wall, _ in rows) for name, rows in times.items()}
    print("medians:")
    for name, median in medians.items():
        loads = ", ".join(f"{load:.1f}" for _, load in times[name])
        print(f"  {name:<15} {median:6.2f} s   (rounds: {', '.join(f'{w:.2f}' for w, _ in times[name])}; "
              f"load at their starts: {loads})")
    bare = min(("bare_1_thread", "bare_2_threads"), key=medians.__getitem__)
    ratios = {"predict_onnx": medians["predict_onnx"] / medians["import_torch"],
              "predict_run": medians["predict_run"] / medians["import_torch"],
              "one_epoch": medians["one_epoch"] / medians[bare]}
    print("ratios:")
    print(f"  predict model.onnx / import torch   {ratios['predict_onnx']:.2f}  (target <= {TARGETS['predict_onnx']})")
    print(f"  predict RUN / import torch          {ratios['predict_run']:.2f}  (target <= {TARGETS['predict_run']})")
    print(f"  one-epoch run / bare script ({bare.removeprefix('bare_').replace('_', ' ')}, the faster)  "
          f"{ratios['one_epoch']:.2f}  (target <= {TARGETS['one_epoch']})")
    missed = [name for name, ratio in ratios.items() if ratio > TARGETS[name]]
    print("all targets met" if not missed else f"missed: {', '.join(missed)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", required=True, help="the folder holding MNIST/raw/")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    print(f"{os.cpu_count()} CPUs; uptime: {subprocess.run(['uptime'], capture_output=True, text=True).stdout.strip()}")
    with tempfile.TemporaryDirectory() as folder:
        scratch = Path(folder)
        env = environment(scratch)
        run_dir, onnx, image = set_up(args.data_dir, scratch, env)
        times = measure(contenders(args.data_dir, scratch, run_dir, onnx, image), args.rounds, env)
    report(times)
    print(f"uptime: {subprocess.run(['uptime'], capture_output=True, text=True).stdout.strip()}")


if __name__ == "__main__":
    main()
