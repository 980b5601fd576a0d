"""Training throughput of the tutorial MLP (batch 32) three ways, in one process.

(a) ``tutorial``: the tutorial's plain loop: torchvision ``MNIST`` with ``ToTensor``
    per sample, a shuffling ``DataLoader``, ``Adam``, ``loss.item()`` every step.
(b) ``bare``: a hand-written loop over one preloaded, normalised tensor (a seeded
    permutation per epoch, batches by indexing) with the same optimizer as (c).
(c) ``ignite_mnist``: ``ignite_mnist.training.managed.run`` with its defaults (tensor
    loader, validation every epoch, checkpointing, log-progress, metrics log;
    W&B and plots off), ``samples_per_second`` from its summary (the timed span
    includes the validation and checkpoint of each epoch).

All three train the same 55,000 images (the same held-out 5,000 are left out)
for ``--epochs`` epochs. Rounds interleave the contenders (a, b, c, then b, c, a,
...) and the JSON reports medians, because a shared machine's speed drifts.
Every contender runs with the same torch thread count and with denormal floats
flushed to zero (``torch.set_flush_denormal``, which ignite-mnist sets while it
trains on CPU); ``--keep-denormals`` leaves (a) and (b) without it.

Finally a default training run (``python -m ignite_mnist --epochs 1``) runs in a
subprocess and its peak RSS is reported.

Usage:
    python benchmarks/throughput.py --data-dir /work/shared/data --epochs 1 --rounds 3
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from ignite_mnist import TrainConfig
from ignite_mnist.data import MNIST, load_splits, normalise
from ignite_mnist.models import TutorialMLP
from ignite_mnist.optim import build_optimizer
from ignite_mnist.training.managed import run

BATCH_SIZE = 32
LR = 1e-3


def tutorial(data_dir: str, train_indices: torch.Tensor, epochs: int, seed: int) -> float:
    """(a) samples/s of the tutorial's loop."""
    from torch.utils.data import DataLoader, Subset
    from torchvision import datasets, transforms

    torch.manual_seed(seed)
    dataset = Subset(datasets.MNIST(data_dir, train=True, transform=transforms.ToTensor()), train_indices.tolist())
    loader = DataLoader(dataset, batch_size=BATCH_SIZE, shuffle=True)
    model = TutorialMLP()
    optimizer = torch.optim.Adam(model.parameters(), lr=LR)
    loss_fn = nn.CrossEntropyLoss()
    started = time.perf_counter()
    for _ in range(epochs):
        model.train()
        running_loss = 0.0
        for images, labels in loader:
            optimizer.zero_grad()
            loss = loss_fn(model(images), labels)
            loss.backward()
            optimizer.step()
            running_loss += loss.item()
    return epochs * len(dataset) / (time.perf_counter() - started)


def bare(images: torch.Tensor, labels: torch.Tensor, epochs: int, seed: int) -> float:
    """(b) samples/s of a hand-written loop over preloaded tensors, same optimizer as ignite-mnist."""
    torch.manual_seed(seed)
    model = TutorialMLP()
    optimizer = build_optimizer("adam", model.parameters(), lr=LR)
    generator = torch.Generator().manual_seed(seed)
    started = time.perf_counter()
    for _ in range(epochs):
        model.train()
        order = torch.randperm(len(labels), generator=generator)
        for start in range(0, len(labels), BATCH_SIZE):
            chosen = order[start : start + BATCH_SIZE]
            optimizer.zero_grad(set_to_none=True)
            loss = F.cross_entropy(model(images[chosen]), labels[chosen])
            loss.backward()
            optimizer.step()
    return epochs * len(labels) / (time.perf_counter() - started)


def ignite_mnist_run(data_dir: str, output_dir: str, name: str, epochs: int, seed: int, val_size: int) -> float:
    """(c) samples/s of ``training.run`` with validation, checkpoints and log-progress."""
    config = TrainConfig(
        data_dir=data_dir, epochs=epochs, seed=seed, val_size=val_size, output_dir=output_dir, run_name=name,
        progress="log", tracker=["none"], plots=False, device="cpu",
    )
    with contextlib.redirect_stdout(sys.stderr):  # its log-progress lines; stdout is for the JSON
        return run(config).samples_per_second


# The child reports its own VmHWM: ru_maxrss of a forked child (and of a process after exec) also counts
# the parent's pages at fork time, which would report this benchmark's own peak instead.
_REPORT_PEAK = (
    "import atexit, runpy, sys\n"
    "def peak():\n"
    "    line = next(l for l in open('/proc/self/status') if l.startswith('VmHWM'))\n"
    "    print('VmHWM', line.split()[1], file=sys.stderr)\n"
    "atexit.register(peak)\n"
    "sys.argv[0] = 'ignite-mnist'\n"
    "runpy.run_module('ignite_mnist', run_name='__main__')\n"
)


def default_run_peak_rss_mb(data_dir: str, output_dir: str, val_size: int) -> float:
    """Peak RSS (MB) of ``python -m ignite_mnist --epochs 1`` with every other setting at its default."""
    done = subprocess.run(
        [sys.executable, "-c", _REPORT_PEAK, "--epochs", "1", "--data-dir", data_dir, "--output-dir", output_dir,
         "--val-size", str(val_size), "--wandb-mode", "disabled", "--progress", "none"],
        check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )
    kilobytes = int(next(line for line in done.stderr.splitlines() if line.startswith("VmHWM")).split()[1])
    return round(kilobytes / 1024, 1)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", default=os.environ.get("IGNITE_MNIST_DATA_DIR", "./data"))
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--val-size", type=int, default=5000, help="held-out images, as ignite-mnist's default")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads(), help="torch threads for all")
    parser.add_argument("--keep-denormals", action="store_true", help="do not flush denormals for (a) and (b)")
    parser.add_argument("--skip-rss", action="store_true", help="skip the default-run peak RSS subprocess")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    splits = load_splits(args.data_dir, "mnist", val_size=args.val_size, seed=0)
    spec = MNIST
    images, labels = normalise(splits.train[0], spec.mean, spec.std), splits.train[1]
    samples: dict[str, list[float]] = {"tutorial": [], "bare": [], "ignite_mnist": []}
    with tempfile.TemporaryDirectory() as output_dir:
        contenders = {
            "tutorial": lambda r: tutorial(args.data_dir, splits.train_indices, args.epochs, r),
            "bare": lambda r: bare(images, labels, args.epochs, r),
            "ignite_mnist": lambda r: ignite_mnist_run(
                args.data_dir, output_dir, f"round{r}", args.epochs, r, args.val_size
            ),
        }
        names = list(contenders)
        for round_ in range(args.rounds):
            for name in names[round_ % 3 :] + names[: round_ % 3]:
                torch.set_flush_denormal(not args.keep_denormals)
                samples[name].append(round(contenders[name](round_), 1))
                print(f"round {round_ + 1}/{args.rounds} {name}: {samples[name][-1]:.0f} samples/s", file=sys.stderr)
        rss = None if args.skip_rss else default_run_peak_rss_mb(args.data_dir, output_dir, args.val_size)
    median = {name: statistics.median(values) for name, values in samples.items()}
    result = {
        "samples_per_second": median,
        "rounds": samples,
        "ratio_c_over_a": round(median["ignite_mnist"] / median["tutorial"], 2),
        "ratio_c_over_b": round(median["ignite_mnist"] / median["bare"], 2),
        "peak_rss_mb_this_process": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "peak_rss_mb_default_run": rss,
        "settings": {"epochs": args.epochs, "rounds": args.rounds, "batch_size": BATCH_SIZE,
                     "threads": args.threads, "denormals_flushed": not args.keep_denormals},
        "machine": {"cpus": os.cpu_count(), "processor": platform.processor() or platform.machine(),
                    "torch": torch.__version__, "load_average": os.getloadavg()},
    }
    print(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
