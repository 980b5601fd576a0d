"""Which samples, in which order: the seeded validation split and each epoch's order.

Both are pure functions of their arguments (a seed, an epoch number), so a resumed
run recomputes them instead of storing them, and the two loader stacks
(:mod:`ignite_mnist.data.loaders`) see the same samples in the same order.

Example:
    >>> splits = load_splits(data_dir, "mnist", val_size=200, seed=0)
    >>> len(splits.train[1]), len(splits.val[1]), len(splits.test[1])
    (1000, 200, 300)
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import torch

from ignite_mnist.data.datasets import Dataset, dataset_spec, load_split_tensors
from ignite_mnist.errors import ConfigError

__all__ = ["Splits", "epoch_permutation", "load_splits", "split_indices"]


def split_indices(n: int, val_size: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A seeded split of ``range(n)`` into sorted (train, validation) indices.

    Example:
        >>> train, val = split_indices(10, 3, seed=0)
        >>> len(train), len(val), set(train.tolist()).isdisjoint(val.tolist())
        (7, 3, True)
    """
    if not 0 < val_size < n:
        raise ConfigError("--val-size", f"must be between 1 and {n - 1} (the training set holds {n}), got {val_size}")
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    return order[val_size:].sort().values, order[:val_size].sort().values


def epoch_permutation(
    n: int, epoch: int, *, seed: int, shuffle: bool = True, rank: int = 0, world_size: int = 1
) -> torch.Tensor:
    """The sample indices one rank visits in epoch ``epoch``: a pure function of its arguments.

    Both loaders (:class:`TensorLoader` and :class:`ResumableDataLoader`) draw their
    order here, so the two paths see the same samples in the same order, and a
    resumed run can recompute any epoch's order. With ``world_size > 1`` each rank
    takes every ``world_size``-th index of the shared permutation (disjoint shards).

    Example:
        >>> epoch_permutation(6, 0, seed=1).sort().values.tolist()
        [0, 1, 2, 3, 4, 5]
        >>> epoch_permutation(6, 0, seed=1, shuffle=False, rank=1, world_size=2).tolist()
        [1, 3, 5]
    """
    if shuffle:
        order = torch.randperm(n, generator=torch.Generator().manual_seed(seed * 1_000_003 + epoch))
    else:
        order = torch.arange(n)
    usable = n - n % world_size
    return order[:usable][rank::world_size]


class Splits(NamedTuple):
    """Raw ``(images, labels)`` of train, validation and test, plus the dataset's spec."""

    train: tuple[torch.Tensor, torch.Tensor]
    val: tuple[torch.Tensor, torch.Tensor]
    test: tuple[torch.Tensor, torch.Tensor]
    spec: Dataset
    train_indices: torch.Tensor
    val_indices: torch.Tensor


def load_splits(root: str | Path, dataset: str, *, val_size: int, seed: int) -> Splits:
    """Load a dataset and hold a seeded validation split out of its training set."""
    images, labels = load_split_tensors(root, dataset, train=True)
    train_idx, val_idx = split_indices(len(labels), val_size, seed)
    test = load_split_tensors(root, dataset, train=False)
    return Splits(
        (images[train_idx], labels[train_idx]), (images[val_idx], labels[val_idx]), test,
        dataset_spec(dataset), train_idx, val_idx,
    )
