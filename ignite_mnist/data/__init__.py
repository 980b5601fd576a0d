"""Datasets and their loaders: find or fetch the files, check them, split, normalise, batch.

One concept per module, every name re-exported here (``from ignite_mnist.data import ...``),
each submodule imported when one of its names is first asked for, so reading a dataset's
files or an exported model's :class:`DatasetInfo` loads neither torch nor torchvision:

* :mod:`~ignite_mnist.data.datasets`: MNIST and Fashion-MNIST (:class:`DatasetSpec`),
  a folder of images, :class:`DatasetInfo` (what a model keeps of its dataset),
  finding or fetching the files (:func:`prepare_files`);
* :mod:`~ignite_mnist.data.idx`: the IDX files, checked before they are read;
* :mod:`~ignite_mnist.data.splits`: the seeded validation split and each epoch's order;
* :mod:`~ignite_mnist.data.loaders`: :class:`TensorLoader` (the fast path) and
  :class:`ResumableDataLoader` (torchvision's ``DataLoader``), both exactly resumable;
* :mod:`~ignite_mnist.data.builders`: a run's three loaders from one :class:`LoaderOptions`.

Example:
    >>> from ignite_mnist.data import LoaderOptions, build_loaders, load_splits
    >>> splits = load_splits(data_dir, "mnist", val_size=200, seed=0)
    >>> train, val, test = build_loaders(splits, LoaderOptions(batch_size=32, seed=0))
    >>> images, labels = next(iter(train))
    >>> images.shape, labels.shape, len(train)
    (torch.Size([32, 1, 28, 28]), torch.Size([32]), 32)
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ignite_mnist.data.builders import LoaderOptions, build_loaders, tensor_loaders, torch_loaders
    from ignite_mnist.data.datasets import (
        FASHION_MNIST,
        MNIST,
        Dataset,
        DatasetInfo,
        DatasetSpec,
        dataset_spec,
        load_split_arrays,
        load_split_tensors,
        prepare_files,
    )
    from ignite_mnist.data.idx import check_idx_pair, read_idx_pair
    from ignite_mnist.data.loaders import ResumableDataLoader, TensorLoader, normalise
    from ignite_mnist.data.splits import Splits, epoch_permutation, load_splits, split_indices

#: Each name and the submodule that defines it.
_SUBMODULE = {
    **dict.fromkeys(("LoaderOptions", "build_loaders", "tensor_loaders", "torch_loaders"), "builders"),
    **dict.fromkeys(("FASHION_MNIST", "MNIST", "Dataset", "DatasetInfo", "DatasetSpec", "dataset_spec",
                     "load_split_arrays", "load_split_tensors", "prepare_files"), "datasets"),
    **dict.fromkeys(("check_idx_pair", "read_idx_pair"), "idx"),
    **dict.fromkeys(("ResumableDataLoader", "TensorLoader", "normalise"), "loaders"),
    **dict.fromkeys(("Splits", "epoch_permutation", "load_splits", "split_indices"), "splits"),
}

__all__ = [
    "FASHION_MNIST",
    "MNIST",
    "Dataset",
    "DatasetInfo",
    "DatasetSpec",
    "LoaderOptions",
    "ResumableDataLoader",
    "Splits",
    "TensorLoader",
    "build_loaders",
    "check_idx_pair",
    "dataset_spec",
    "epoch_permutation",
    "load_split_arrays",
    "load_split_tensors",
    "load_splits",
    "normalise",
    "prepare_files",
    "read_idx_pair",
    "split_indices",
    "tensor_loaders",
    "torch_loaders",
]


def __getattr__(name: str) -> Any:
    if name in _SUBMODULE:
        return getattr(importlib.import_module(f"ignite_mnist.data.{_SUBMODULE[name]}"), name)
    raise AttributeError(f"module 'ignite_mnist.data' has no attribute {name!r}")
