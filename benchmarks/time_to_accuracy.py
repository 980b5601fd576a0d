"""Wall time from process start to a target MNIST test accuracy: Ignite's example and ignite-mnist recipes.

(a) ``ignite_example``: Ignite's own MNIST example recipe, written here: its CNN
    (conv 1->10 k5, conv 10->20 k5 + Dropout2d, fc 320->50->10, log-softmax), SGD
    lr 0.01 momentum 0.5, batch 64, a ``DataLoader`` over torchvision ``MNIST`` with
    ``ToTensor`` + ``Normalize``, trained by Ignite's ``create_supervised_trainer``.
(b) ``ignite_mnist[RECIPE]``: an ignite-mnist recipe (``--recipes``: by default
    ``fast`` and ``one-epoch``) built from its public pieces the way ``training.run``
    wires them: ``build_loaders`` (tensor loader), ``build_model``, ``prepare_model``
    (channels-last), ``build_optimizer``, ``create_trainer`` (autocast, label
    smoothing), ``attach_lr_schedule``, ``flush_denormals``.
(c) ``bare[RECIPE]``: the same recipe as a hand-written loop over preloaded tensors
    (no Ignite): the same network (channels-last), fused Adam/AdamW, the same
    one-cycle curve, label smoothing and autocast decision.

Each contender runs in its own fresh Python process; its clock starts when the
parent starts that process (so imports and data loading count) and pauses while
the test set is evaluated (every ``--eval-every`` training images, identical for
all). Reported: seconds to 98.5 % for all, to 99.0 % for (b) and (c), the median
over ``--seeds`` (seed by seed, the contenders interleaved), and the ratios. (a)
stops at 98.5 % or after ``--example-epochs`` epochs; (b) and (c) run their
recipe's epochs (stopping early once 99.0 % is reached). All contenders use the
same torch thread count and flush denormal floats.

Usage:
    python benchmarks/time_to_accuracy.py --data-dir /work/shared/data --seeds 0 1 2 3 4
    python benchmarks/time_to_accuracy.py --recipes fast one-epoch --only ignite_mnist bare
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
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


def _recipe_config(args: argparse.Namespace) -> Any:
    from ignite_mnist.settings.config import TrainConfig
    from ignite_mnist.settings.recipes import RECIPES

    return TrainConfig.from_dict(RECIPES[args.recipe] | {"seed": args.seed, "data_dir": args.data_dir,
                                                         "val_size": args.val_size})


def ignite_mnist(args: argparse.Namespace, clock: Clock) -> None:
    """(b) an ignite-mnist recipe (``--recipe``) from its public pieces."""
    from ignite.engine import Events
    from ignite.utils import manual_seed

    from ignite_mnist.data import LoaderOptions, build_loaders, load_splits
    from ignite_mnist.data.augment import random_shift_rotate
    from ignite_mnist.engines import create_trainer, training_loss
    from ignite_mnist.handlers.lr_schedule import attach_lr_schedule
    from ignite_mnist.models import build_model
    from ignite_mnist.optim import build_optimizer
    from ignite_mnist.runtime.fast import flush_denormals, prepare_model, uses_channels_last

    config = _recipe_config(args)
    splits = load_splits(config.data_dir, config.dataset, val_size=config.val_size, seed=config.seed)
    manual_seed(config.seed)
    train, _, test = build_loaders(splits, LoaderOptions(batch_size=config.batch_size, seed=config.seed,
                                                         transform=random_shift_rotate if config.augment else None))
    model = build_model(config.model)
    optimizer = build_optimizer(config.optimizer, model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    trainer = create_trainer(prepare_model(model, "cpu"), optimizer, training_loss(config.label_smoothing),
                             amp=config.amp, channels_last=uses_channels_last(model, "cpu"))
    attach_lr_schedule(trainer, optimizer, config.lr_schedule, lr=config.lr,
                       total_iterations=config.epochs * len(train))

    @trainer.on(Events.ITERATION_COMPLETED(every=max(1, args.eval_every // config.batch_size)))
    def evaluate(engine: Any) -> None:
        if clock.evaluate(lambda: test_accuracy(model, test), engine.state.iteration * config.batch_size) >= 0.99:
            engine.terminate()

    with flush_denormals():
        trainer.run(train, max_epochs=config.epochs)


def _one_cycle(step: int, total: int, peak: float) -> float:
    """The library's one-cycle curve: lr/10 up to lr over the first fifth, then down to lr/1000 at the end."""
    warm = max(1, int(total * 0.2))
    if step < warm:
        return peak / 10 + (peak - peak / 10) * step / warm
    return peak + (peak / 1000 - peak) * (step - warm) / (total - 1 - warm)


def bare(args: argparse.Namespace, clock: Clock) -> None:
    """(c) the same recipe as a hand-written loop over preloaded tensors (no augmentation)."""
    import torch
    from torch.nn import functional as F

    from ignite_mnist.data import load_splits, normalise
    from ignite_mnist.models import build_model
    from ignite_mnist.runtime.devices import amp_dtype

    config = _recipe_config(args)
    torch.manual_seed(args.seed)
    splits = load_splits(args.data_dir, "mnist", val_size=args.val_size, seed=args.seed)
    images, labels = normalise(splits.train[0], 0.1307, 0.3081), splits.train[1]
    test = [(normalise(splits.test[0], 0.1307, 0.3081), splits.test[1])]

    model = build_model(config.model).to(memory_format=torch.channels_last)  # the recipe's network, NHWC
    optimizers = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW}
    optimizer = optimizers[config.optimizer](model.parameters(), lr=config.lr, fused=True)
    steps_per_epoch = -(-len(labels) // config.batch_size)
    total = config.epochs * steps_per_epoch
    every = max(1, args.eval_every // config.batch_size)
    autocast = amp_dtype("cpu") if config.amp else None  # as --amp: bfloat16 where the CPU has it, else float32
    step = 0
    for _ in range(config.epochs):
        order = torch.randperm(len(labels))
        for start in range(0, len(labels), config.batch_size):
            for group in optimizer.param_groups:
                group["lr"] = _one_cycle(step, total, config.lr)
            chosen = order[start : start + config.batch_size]
            optimizer.zero_grad(set_to_none=True)
            with torch.autocast("cpu", dtype=autocast) if autocast is not None else contextlib.nullcontext():
                loss = F.cross_entropy(model(images[chosen].contiguous(memory_format=torch.channels_last)),
                                       labels[chosen], label_smoothing=config.label_smoothing)
            loss.backward()
            optimizer.step()
            step += 1
            seen = step * config.batch_size
            if step % every == 0 and clock.evaluate(lambda: test_accuracy(model, test), seen) >= 0.99:
                return


CONTENDERS = {"ignite_example": ignite_example, "ignite_mnist": ignite_mnist, "bare": bare}


def child(args: argparse.Namespace) -> None:
    import torch

    torch.set_num_threads(args.threads)
    torch.set_flush_denormal(True)
    CONTENDERS[args.contender](args, Clock(args.spawned_at))


def first_reach(rows: list[dict[str, Any]], target: float) -> float | None:
    return next((row["seconds"] for row in rows if row["accuracy"] >= target), None)


def run_contender(name: str, recipe: str, seed: int, args: argparse.Namespace) -> dict[str, Any]:
    """One contender in a fresh process; its seconds to each target and its evaluations."""
    spawned_at = time.time()
    passthrough = ["--data-dir", args.data_dir, "--threads", str(args.threads), "--seed", str(seed),
                   "--eval-every", str(args.eval_every), "--val-size", str(args.val_size),
                   "--example-epochs", str(args.example_epochs), "--recipe", recipe]
    done = subprocess.run(
        [sys.executable, __file__, "--contender", name, "--spawned-at", repr(spawned_at), *passthrough],
        stdout=subprocess.PIPE, text=True, check=True,
    )
    rows = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    result = {f"seconds_to_{target * 100:.1f}": first_reach(rows, target) for target in TARGETS[name]}
    return result | {"best_accuracy": max(row["accuracy"] for row in rows), "evaluations": rows}


def _median(values: list[float | None]) -> float | None:
    """The median, or None when any run missed the target (a miss is slower than every hit)."""
    return None if not values or None in values else round(statistics.median(values), 2)


def parent(args: argparse.Namespace) -> dict[str, Any]:
    """Every contender for every recipe and seed, interleaved (seed by seed); medians and ratios."""
    contenders = [(name, recipe) for recipe in args.recipes for name in args.only or CONTENDERS
                  if name != "ignite_example" or recipe == args.recipes[0]]  # the example has no recipe
    results: dict[str, dict[str, Any]] = {f"{name}[{recipe}]": {"runs": []} for name, recipe in contenders}
    for seed in args.seeds:
        for name, recipe in contenders:
            run = run_contender(name, recipe, seed, args) | {"seed": seed}
            results[f"{name}[{recipe}]"]["runs"].append(run)
            print(f"{name}[{recipe}] seed {seed}: "
                  f"{json.dumps({k: v for k, v in run.items() if k != 'evaluations'})}", file=sys.stderr)
    for result in results.values():
        for key in [k for k in result["runs"][0] if k.startswith("seconds_to_")]:
            result[f"median_{key}"] = _median([run[key] for run in result["runs"]])

    def ratio(numerator: str, denominator: str, key: str) -> float | None:
        a, b = results.get(numerator, {}).get(key), results.get(denominator, {}).get(key)
        return round(a / b, 2) if a and b else None

    ratios = {f"ignite_mnist/bare[{recipe}] 99.0": ratio(f"ignite_mnist[{recipe}]", f"bare[{recipe}]",
                                                          "median_seconds_to_99.0") for recipe in args.recipes}
    for recipe in args.recipes[1:]:
        ratios[f"ignite_mnist[{recipe}]/ignite_mnist[{args.recipes[0]}] 99.0"] = ratio(
            f"ignite_mnist[{recipe}]", f"ignite_mnist[{args.recipes[0]}]", "median_seconds_to_99.0")
    ratios[f"ignite_example/ignite_mnist[{args.recipes[0]}] 98.5"] = ratio(
        f"ignite_example[{args.recipes[0]}]", f"ignite_mnist[{args.recipes[0]}]", "median_seconds_to_98.5")
    settings = {"threads": args.threads, "eval_every_samples": args.eval_every, "seeds": args.seeds,
                "example_epochs": args.example_epochs, "cpus": os.cpu_count(), "load_average_at_end": os.getloadavg()}
    return {"ratios": ratios, "settings": settings, "contenders": results}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", default=os.environ.get("IGNITE_MNIST_DATA_DIR", "./data"))
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1,
                        help="torch threads of every contender (default: one per core, torch's default)")
    parser.add_argument("--recipes", nargs="+", default=["fast", "one-epoch"],
                        help="recipes for (b) and (c); ratios are against the first")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--eval-every", type=int, default=6400, help="training images between test evaluations")
    parser.add_argument("--val-size", type=int, default=5000, help="images (b) and (c) hold out, as ignite-mnist")
    parser.add_argument("--example-epochs", type=int, default=10, help="most epochs for (a)")
    parser.add_argument("--only", nargs="*", choices=list(CONTENDERS), help="run only these contenders")
    parser.add_argument("--contender", choices=list(CONTENDERS), help=argparse.SUPPRESS)
    parser.add_argument("--spawned-at", type=float, help=argparse.SUPPRESS)
    parser.add_argument("--recipe", help=argparse.SUPPRESS)  # a child's recipe
    parser.add_argument("--seed", type=int, help=argparse.SUPPRESS)  # a child's seed
    args = parser.parse_args(argv)
    if args.contender:
        child(args)
        return
    summary = parent(args)
    print(json.dumps(summary, indent=2))
    print("\n| contender | median s to 98.5 % | median s to 99.0 % | per seed (99.0 %) |\n| --- | --- | --- | --- |")
    for name, result in summary["contenders"].items():
        per_seed = ", ".join(str(run.get("seconds_to_99.0")) for run in result["runs"])
        print(f"| {name} | {result.get('median_seconds_to_98.5')} | {result.get('median_seconds_to_99.0')} | "
              f"{per_seed if 'seconds_to_99.0' in result['runs'][0] else ''} |")
    print("\n" + "\n".join(f"{key}: {value}" for key, value in summary["ratios"].items()))


if __name__ == "__main__":
    main()
