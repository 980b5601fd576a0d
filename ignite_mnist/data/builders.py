"""A run's three loaders (train, validation, test) of the kind ``--loader`` names, from one :class:`LoaderOptions`.

Example:
    >>> from ignite_mnist.data.splits import load_splits
    >>> splits = load_splits(data_dir, "mnist", val_size=200, seed=0)
    >>> train, val, test = build_loaders(splits, LoaderOptions(batch_size=64, seed=0))
    >>> len(train), len(val), len(test)
    (16, 1, 1)
"""

from __future__ import annotations

from collections.abc import Callable, Sized
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import torch

from ignite_mnist.data.loaders import ResumableDataLoader, TensorLoader
from ignite_mnist.data.splits import Splits
from ignite_mnist.registry import LOADERS

__all__ = ["LoaderOptions", "build_loaders", "tensor_loaders", "torch_loaders"]


@dataclass(frozen=True)
class LoaderOptions:
    """How a run's splits are batched: what every loader builder takes.

    Attributes:
        batch_size: training samples per batch (per rank).
        seed: seed of the per-epoch training order.
        loader: the kind, one of :data:`~ignite_mnist.registry.LOADERS` (``tensor``, ``torch``).
        root: the dataset root (``torch`` reads the files through torchvision).
        device: where ``tensor`` keeps the tensors; ``torch`` pins memory for CUDA.
        num_workers: ``DataLoader`` worker processes (``torch`` only).
        eval_batch_size: samples per validation and test batch.
        rank: this process's rank, the shard it takes.
        world_size: how many ranks share each epoch.
        transform: a batch-wise function applied to training images (see :mod:`ignite_mnist.data.augment`).
    """

    batch_size: int
    seed: int = 0
    loader: str = "tensor"
    root: str | Path = ""
    device: torch.device | str = "cpu"
    num_workers: int = 0
    eval_batch_size: int = 1000
    rank: int = 0
    world_size: int = 1
    transform: Callable[[torch.Tensor], torch.Tensor] | None = None


def torch_loaders(
    splits: Splits, options: LoaderOptions
) -> tuple[ResumableDataLoader, torch.utils.data.DataLoader[Any], torch.utils.data.DataLoader[Any]]:
    """The classic path: torchvision ``Dataset`` + ``ToTensor``/``Normalize`` + ``DataLoader``.

    Uses the same validation split as :func:`~ignite_mnist.data.splits.load_splits`
    (``splits.train_indices``) and, for training, the same per-epoch order as
    :class:`~ignite_mnist.data.loaders.TensorLoader`.
    """
    from torch.utils.data import DataLoader, Subset

    rank, world_size = options.rank, options.world_size
    full_train = splits.spec.torchvision_dataset(options.root, train=True)
    test = splits.spec.torchvision_dataset(options.root, train=False)
    common: dict[str, Any] = {"num_workers": options.num_workers,
                              "pin_memory": torch.device(options.device).type == "cuda"}
    train_loader = ResumableDataLoader(
        Subset(full_train, splits.train_indices.tolist()), options.batch_size, seed=options.seed, rank=rank,
        world_size=world_size, transform=options.transform, **common,
    )
    val_indices = splits.val_indices[rank::world_size].tolist()
    val_loader = DataLoader(Subset(full_train, val_indices), batch_size=options.eval_batch_size, **common)
    test_size = len(cast(Sized, test))
    test_loader = DataLoader(Subset(test, range(rank, test_size, world_size)), batch_size=options.eval_batch_size,
                             **common)
    return train_loader, val_loader, test_loader


def tensor_loaders(splits: Splits, options: LoaderOptions) -> tuple[TensorLoader, TensorLoader, TensorLoader]:
    """The fast path: three :class:`~ignite_mnist.data.loaders.TensorLoader` on ``options.device``."""
    rank, world_size = options.rank, options.world_size
    common: dict[str, Any] = {"mean": splits.spec.mean, "std": splits.spec.std, "device": options.device}
    return (
        TensorLoader(*splits.train, options.batch_size, shuffle=True, seed=options.seed, rank=rank,
                     world_size=world_size, transform=options.transform, **common),
        TensorLoader(splits.val[0][rank::world_size], splits.val[1][rank::world_size], options.eval_batch_size,
                     **common),
        TensorLoader(splits.test[0][rank::world_size], splits.test[1][rank::world_size], options.eval_batch_size,
                     **common),
    )


def build_loaders(splits: Splits, options: LoaderOptions) -> tuple[Any, Any, Any]:
    """Train, validation and test loaders of the kind ``options.loader`` names
    (:data:`ignite_mnist.registry.LOADERS`): :func:`tensor_loaders` or :func:`torch_loaders`.

    Either way the training batches come in the same seeded order and resume exactly.
    With ``world_size > 1`` validation and test are split too, without dropping a
    sample (rank r takes samples r, r + world_size, ...): metrics reduced across
    ranks then count every sample exactly once.
    """
    loaders: tuple[Any, Any, Any] = LOADERS.load(options.loader)(splits, options)
    return loaders
