"""Where a training command's seconds go: timestamps around its phases, and its exit.

Runs the command line (``python -m ignite_mnist ARGS``, default ``--recipe one-epoch``)
in a fresh process whose functions for each phase are wrapped to print, when they
start and end, the seconds since the process started, the process's CPU seconds and
the thread's: the imports, reading and splitting the data, the threads probe,
training, the test pass, the plots, W&B's start and report. The last line is the
process's end, timed from outside, so the interpreter's exit shows too. W&B, if
the command uses it, runs offline into a temporary folder.

Example:
    $ python benchmarks/run_phases.py --data-dir /work/shared/data
    $ python benchmarks/run_phases.py --data-dir /work/shared/data -- --recipe one-epoch --tracker none --no-plots
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time

#: (module, function) wrapped in the child, in the order a run reaches them.
PHASES = [
    ("ignite_mnist.training.parts", "load_splits"),
    ("ignite_mnist.training.parts", "_choose_threads"),
    ("ignite_mnist.training.managed", "train"),
    ("ignite_mnist.training.managed", "test_and_report"),
    ("ignite_mnist.training.report", "evaluate_model"),
    ("ignite_mnist.training.report", "write_run_plots"),
    ("ignite_mnist.training.report", "_report_to_trackers"),
    ("ignite_mnist.tracking.wandb", "_start_run"),
]

CHILD = """
import atexit, functools, importlib, sys, threading, time
STARTED = float(sys.argv.pop(1))

def stamp(what):
    print(f"[{time.time() - STARTED:6.2f} s | cpu {time.process_time():6.2f} | thread {time.thread_time():6.2f}] "
          f"{what}", file=sys.stderr, flush=True)

def wrap(module, name):
    owner = importlib.import_module(module)
    function = getattr(owner, name)

    @functools.wraps(function)
    def wrapped(*args, **kwargs):
        where = f"{module.rsplit('.', 1)[-1]}.{name} [{threading.current_thread().name}]"
        stamp("> " + where)
        try:
            return function(*args, **kwargs)
        finally:
            stamp("< " + where)

    setattr(owner, name, wrapped)

stamp("python started")
from ignite_mnist.cli import main
import ignite_mnist.training.managed
stamp("imported the managed run (torch, Ignite)")
for module, name in PHASES:
    wrap(module, name)
atexit.register(stamp, "exit handlers (the last to run)")
sys.argv[0] = "ignite-mnist"
code = main()  # no arguments: the process's own command line, as the console script runs it
stamp(f"main returned {code}")
raise SystemExit(code)
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", required=True, help="the folder holding MNIST/raw/")
    parser.add_argument("args", nargs="*", help="the command's own arguments, after -- (default: --recipe one-epoch)")
    options = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        env = {key: value for key, value in os.environ.items() if key != "OMP_NUM_THREADS"} | {"WANDB_MODE": "offline"}
        env |= dict.fromkeys(("WANDB_DIR", "WANDB_CACHE_DIR", "WANDB_CONFIG_DIR", "WANDB_DATA_DIR"), scratch)
        command = [*(options.args or ["--recipe", "one-epoch"]), "--data-dir", options.data_dir,
                   "--output-dir", scratch, "--run-name", "phases", "--progress", "none"]
        print(f"load average {os.getloadavg()[0]:.1f}; ignite-mnist {' '.join(command)}", flush=True)
        started = time.time()
        code = f"PHASES = {PHASES!r}\n{CHILD}"
        result = subprocess.run([sys.executable, "-c", code, str(started), *command], env=env)
        print(f"[{time.time() - started:6.2f} s] the process ended ({result.returncode}); load average "
              f"{os.getloadavg()[0]:.1f}", file=sys.stderr, flush=True)


if __name__ == "__main__":
    main()
