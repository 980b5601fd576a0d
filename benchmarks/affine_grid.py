"""``ignite_mnist.warp.affine_grid`` against ``F.affine_grid``, and what ``mlp-best``'s deskewing costs a training step.

One process, one batch of 128 28x28 images, interleaved rounds (each contender timed over
``--steps`` calls per round); medians over the rounds and their ratios:

* the sampling grid: ``F.affine_grid(theta, ..., align_corners=False)`` against
  ``warp.affine_grid`` (the same grid built by broadcasting);
* a training step of ``--recipe mlp-best`` (``--augment``, AdamW, batch 128): before, the tutorial
  MLP with the augmentation's grid from ``F.affine_grid``; now, the MLP behind the ``Deskew``
  layer (``mlp-deskew``) with the augmentation as shipped; and the MLP alone with the
  augmentation as shipped (what the deskewing adds).

Usage:
    python benchmarks/affine_grid.py --threads 1 --rounds 7
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import time
from collections.abc import Callable

import torch
from torch.nn import functional as F

from ignite_mnist.data.augment import random_shift_rotate
from ignite_mnist.models import DeskewMLP, TutorialMLP
from ignite_mnist.warp import affine_grid

BATCH = 128


def _augment_with_torchs_grid(images: torch.Tensor) -> torch.Tensor:
    """``random_shift_rotate`` as it was before ``warp``: the same warp and random numbers, the grid from
    ``F.affine_grid``."""
    n, _, height, width = images.shape
    uniform = torch.rand(n, 3, dtype=images.dtype).mul_(2).sub_(1)
    angle = uniform[:, 0] * math.radians(10.0)
    cos, sin = angle.cos(), angle.sin()
    theta = torch.stack((cos, -sin, uniform[:, 1] * (4 / width), sin, cos, uniform[:, 2] * (4 / height)), dim=1)
    grid = F.affine_grid(theta.view(n, 2, 3), list(images.shape), align_corners=False)
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="border", align_corners=False)


def _train_step(model: torch.nn.Module, augment: Callable[[torch.Tensor], torch.Tensor]) -> Callable[[], None]:
    images, labels = torch.randn(BATCH, 1, 28, 28), torch.randint(0, 10, (BATCH,))
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)

    def step() -> None:
        loss = F.cross_entropy(model(augment(images)), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    return step


def contenders() -> dict[str, Callable[[], object]]:
    theta = torch.randn(BATCH, 2, 3)
    return {
        "F.affine_grid": lambda: F.affine_grid(theta, [BATCH, 1, 28, 28], align_corners=False),
        "warp.affine_grid": lambda: affine_grid(theta, 28, 28),
        "step before: mlp, F.affine_grid": _train_step(TutorialMLP(), _augment_with_torchs_grid),
        "step now: mlp-deskew": _train_step(DeskewMLP(), random_shift_rotate),
        "step: mlp alone, warp grid": _train_step(TutorialMLP(), random_shift_rotate),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--steps", type=int, default=200)
    args = parser.parse_args(argv)
    torch.manual_seed(0)
    torch.set_num_threads(args.threads)
    runs = contenders()
    times: dict[str, list[float]] = {name: [] for name in runs}
    for run in runs.values():  # warm-up
        run()
    for round_ in range(args.rounds):
        names = list(runs)[round_ % len(runs):] + list(runs)[:round_ % len(runs)]  # a different order each round
        for name in names:
            started = time.perf_counter()
            for _ in range(args.steps):
                runs[name]()
            times[name].append((time.perf_counter() - started) / args.steps * 1000)
    medians = {name: statistics.median(values) for name, values in times.items()}
    print(f"threads {args.threads}, {args.rounds} rounds of {args.steps} calls, batch {BATCH}; "
          f"load average at the end {os.getloadavg()[0]:.2f}")
    for name, values in times.items():
        print(f"{name:32s} median {medians[name]:.3f} ms  ({', '.join(f'{v:.3f}' for v in values)})")
    print(f"F.affine_grid / warp.affine_grid: {medians['F.affine_grid'] / medians['warp.affine_grid']:.1f}x")
    now, before = medians["step now: mlp-deskew"], medians["step before: mlp, F.affine_grid"]
    print(f"mlp-best step now / before: {now / before:.2f}x; "
          f"with / without the deskewing: {now / medians['step: mlp alone, warp grid']:.2f}x")


if __name__ == "__main__":
    main()
