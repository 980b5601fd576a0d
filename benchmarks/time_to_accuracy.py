"""Wall time from process start to a target MNIST test accuracy, three ways.

(a) ``ignite_example``: Ignite's own MNIST example recipe, written here: its CNN
    (conv 1->10 k5, conv 10->20 k5 + Dropout2d, fc 320->50->10, log-softmax), SGD
    lr 0.01 momentum 0.5, batch 64, a ``DataLoader`` over torchvision ``MNIST`` with
    ``ToTensor`` + ``Normalize``, trained by Ignite's ``create_supervised_trainer``.
(b) ``ignite_mnist``: the fast recipe (``ignite_mnist.recipes.FAST_RECIPE``) built
    from ignite-mnist's public pieces the way ``training.run`` wires them:
    ``build_loaders`` (tensor loader), ``build_model``, ``prepare_model`` (channels-last),
    ``build_optimizer``, ``create_trainer`` (autocast), ``attach_lr_schedule``, ``flush_denormals``.
(c) ``bare``: the same recipe as a hand-written loop over preloaded tensors (no
    Ignite): the same network (``build_model("fastcnn")``, channels-last), fused
    AdamW, the same one-cycle curve, the same autocast decision as ``--amp``
    (bfloat16 where the CPU has bfloat16 instructions).

Each contender runs in its own fresh Python process; its clock starts when the
parent starts that process (so imports and data loading count) and pauses while
the test set is evaluated (every ``--eval-every`` training images, identical for
all three). Reported: seconds to 98.5 % for all, to 99.0 % for (b) and (c).
(a) stops at 98.5 % or after ``--example-epochs`` epochs; (b) and (c) run the
recipe's three epochs (stopping early once 99.0 % is reached). All contenders use
the same torch thread count and flush denormal floats.

Usage:
    python benchmarks/time_to_accuracy.py --data-dir /work/shared/data
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

TARGETS = {"ignite_example": (0.985,), "ignite_mnist": (0.985, 0.99), "bare": (0.985, 0.99)}


class Clock:
    """Seconds since the parent started this process, minus the time spent evaluating."""

    def __init__(self, spawned_at: float) -> None:
        self.spawned_at = spawned_at
        self.paused = 0.0

    def evaluate(self, accuracy_fn: Callable[[], float], samples: int) -> float:
        """Run ``accuracy_fn`` off the clock and print a progress row (JSON) for the parent."""
        paused_at = time.time()
        accuracy = accuracy_fn()
        elapsed = paused_at - self.spawned_at - self.paused
        self.paused += time.time() - paused_at
        row = json.dumps({"seconds": round(elapsed, 2), "samples": samples, "accuracy": accuracy})
        print(row, flush=True)
        print(f"  {row}", file=sys.stderr, flush=True)  # progress for the person watching
        return accuracy


def test_accuracy(model: Any, batches: Iterator[Any] | Any) -> float:
    import torch

    model.eval()
    correct = total = 0
    with torch.no_grad():
        for images, labels in batches:
            correct += int((model(images).argmax(1) == labels).sum())
            total += len(labels)
    model.train()
    return correct / total


def ignite_example(args: argparse.Namespace, clock: Clock) -> None:
    """(a) Ignite's MNIST example recipe."""
    import torch
    from ignite.engine import Events, create_supervised_trainer
    from torch import nn
    from torch.nn import functional as F
    from torch.utils.data import DataLoader
    from torchvision import datasets, transforms

    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv1 = nn.Conv2d(1, 10, kernel_size=5)
            self.conv2 = nn.Conv2d(10, 20, kernel_size=5)
            self.conv2_drop = nn.Dropout2d()
            self.fc1 = nn.Linear(320, 50)
            self.fc2 = nn.Linear(50, 10)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            x = F.relu(F.max_pool2d(self.conv1(x), 2))
            x = F.relu(F.max_pool2d(self.conv2_drop(self.conv2(x)), 2))
            x = F.relu(self.fc1(x.view(-1, 320)))
            x = F.dropout(x, training=self.training)
            return F.log_softmax(self.fc2(x), dim=-1)

    torch.manual_seed(args.seed)
    transform = transforms.Compose([transforms.ToTensor(), transforms.Normalize((0.1307,), (0.3081,))])
    train = DataLoader(datasets.MNIST(args.data_dir, train=True, transform=transform), batch_size=64, shuffle=True)
    test = DataLoader(datasets.MNIST(args.data_dir, train=False, transform=transform), batch_size=1000)
    model = Net()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.5)
    trainer = create_supervised_trainer(model, optimizer, F.nll_loss)

    @trainer.on(Events.ITERATION_COMPLETED(every=max(1, args.eval_every // 64)))
    def evaluate(engine: Any) -> None:
        if clock.evaluate(lambda: test_accuracy(model, test), engine.state.iteration * 64) >= 0.985:
            engine.terminate()

    trainer.run(train, max_epochs=args.example_epochs)


def ignite_mnist(args: argparse.Namespace, clock: Clock) -> None:
    """(b) ignite-mnist's fast recipe from its public pieces."""
    from ignite.engine import Events
    from ignite.utils import manual_seed

    from ignite_mnist.data import build_loaders, load_splits
    from ignite_mnist.engines import create_trainer
    from ignite_mnist.fast import flush_denormals, prepare_model, uses_channels_last
    from ignite_mnist.handlers.lr_schedule import attach_lr_schedule
    from ignite_mnist.models import build_model
    from ignite_mnist.optim import build_optimizer
    from ignite_mnist.recipes import FAST_RECIPE, fast_recipe

    config = fast_recipe(seed=args.seed, data_dir=args.data_dir, val_size=args.val_size)
    splits = load_splits(config.data_dir, config.dataset, val_size=config.val_size, seed=config.seed)
    manual_seed(config.seed)
    train, _, test = build_loaders(splits, batch_size=config.batch_size, seed=config.seed)
    model = build_model(config.model)
    optimizer = build_optimizer(config.optimizer, model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    trainer = create_trainer(prepare_model(model, "cpu"), optimizer, amp=config.amp,
                             channels_last=uses_channels_last(model, "cpu"))
    attach_lr_schedule(trainer, optimizer, config.lr_schedule, lr=config.lr,
                       total_iterations=config.epochs * len(train))
    batch = FAST_RECIPE["batch_size"]

    @trainer.on(Events.ITERATION_COMPLETED(every=max(1, args.eval_every // batch)))
    def evaluate(engine: Any) -> None:
        if clock.evaluate(lambda: test_accuracy(model, test), engine.state.iteration * batch) >= 0.99:
            engine.terminate()

    with flush_denormals():
        trainer.run(train, max_epochs=config.epochs)


def bare(args: argparse.Namespace, clock: Clock) -> None:
    """(c) the fast recipe as a hand-written loop over preloaded tensors."""
    import torch
    from torch.nn import functional as F

    from ignite_mnist.data import load_splits, normalise
    from ignite_mnist.devices import amp_dtype
    from ignite_mnist.models import build_model
    from ignite_mnist.recipes import FAST_RECIPE

    torch.manual_seed(args.seed)
    splits = load_splits(args.data_dir, "mnist", val_size=args.val_size, seed=args.seed)
    images, labels = normalise(splits.train[0], 0.1307, 0.3081), splits.train[1]
    test = [(normalise(splits.test[0], 0.1307, 0.3081), splits.test[1])]

    model = build_model("fastcnn").to(memory_format=torch.channels_last)  # the recipe's network, NHWC
    peak, batch, epochs = FAST_RECIPE["lr"], FAST_RECIPE["batch_size"], FAST_RECIPE["epochs"]
    optimizer = torch.optim.AdamW(model.parameters(), lr=peak, weight_decay=0.0, fused=True)
    steps_per_epoch = -(-len(labels) // batch)
    total = epochs * steps_per_epoch
    warm = int(total * 0.2)
    every = max(1, args.eval_every // batch)
    autocast = amp_dtype("cpu")  # as --amp: bfloat16 where the CPU has it, else float32
    step = 0
    for _ in range(epochs):
        order = torch.randperm(len(labels))
        for start in range(0, len(labels), batch):
            lr = peak / 10 + (peak - peak / 10) * step / warm if step < warm else \
                peak + (peak / 1000 - peak) * (step - warm) / (total - 1 - warm)
            for group in optimizer.param_groups:
                group["lr"] = lr
            chosen = order[start : start + batch]
            optimizer.zero_grad(set_to_none=True)
            with torch.autocast("cpu", dtype=autocast) if autocast is not None else contextlib.nullcontext():
                loss = F.cross_entropy(model(images[chosen].contiguous(memory_format=torch.channels_last)),
                                       labels[chosen])
            loss.backward()
            optimizer.step()
            step += 1
            if step % every == 0 and clock.evaluate(lambda: test_accuracy(model, test), step * batch) >= 0.99:
                return


CONTENDERS = {"ignite_example": ignite_example, "ignite_mnist": ignite_mnist, "bare": bare}


def child(args: argparse.Namespace) -> None:
    import torch

    torch.set_num_threads(args.threads)
    torch.set_flush_denormal(True)
    CONTENDERS[args.contender](args, Clock(args.spawned_at))


def first_reach(rows: list[dict[str, Any]], target: float) -> float | None:
    return next((row["seconds"] for row in rows if row["accuracy"] >= target), None)


def parent(args: argparse.Namespace, passthrough: list[str]) -> dict[str, Any]:
    results: dict[str, Any] = {}
    for name in args.only or CONTENDERS:
        spawned_at = time.time()
        done = subprocess.run(
            [sys.executable, __file__, "--contender", name, "--spawned-at", repr(spawned_at), *passthrough],
            stdout=subprocess.PIPE, text=True, check=True,
        )
        rows = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
        results[name] = {
            f"seconds_to_{target * 100:.1f}": first_reach(rows, target) for target in TARGETS[name]
        } | {"best_accuracy": max(row["accuracy"] for row in rows), "evaluations": rows}
        print(f"{name}: {json.dumps({k: v for k, v in results[name].items() if k != 'evaluations'})}",
              file=sys.stderr)

    def ratio(numerator: str, denominator: str, key: str) -> float | None:
        a, b = results.get(numerator, {}).get(key), results.get(denominator, {}).get(key)
        return round(a / b, 2) if a and b else None

    summary = {
        "speedup_98.5_example_over_ignite_mnist": ratio("ignite_example", "ignite_mnist", "seconds_to_98.5"),
        "ratio_99.0_ignite_mnist_over_bare": ratio("ignite_mnist", "bare", "seconds_to_99.0"),
        "settings": {"threads": args.threads, "eval_every_samples": args.eval_every, "seed": args.seed,
                     "example_epochs": args.example_epochs, "cpus": os.cpu_count(),
                     "load_average_at_end": os.getloadavg()},
    }
    return summary | {"contenders": results}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", default=os.environ.get("IGNITE_MNIST_DATA_DIR", "./data"))
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1,
                        help="torch threads of every contender (default: one per core, torch's default)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--eval-every", type=int, default=6400, help="training images between test evaluations")
    parser.add_argument("--val-size", type=int, default=5000, help="images (b) and (c) hold out, as ignite-mnist")
    parser.add_argument("--example-epochs", type=int, default=10, help="most epochs for (a)")
    parser.add_argument("--only", nargs="*", choices=list(CONTENDERS), help="run only these contenders")
    parser.add_argument("--contender", choices=list(CONTENDERS), help=argparse.SUPPRESS)
    parser.add_argument("--spawned-at", type=float, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.contender:
        child(args)
        return
    passthrough = ["--data-dir", args.data_dir, "--threads", str(args.threads), "--seed", str(args.seed),
                   "--eval-every", str(args.eval_every), "--val-size", str(args.val_size), "--example-epochs", str(args.example_epochs)]
    print(json.dumps(parent(args, passthrough), indent=2))


if __name__ == "__main__":
    main()
