"""Datasets and their loaders: find or fetch the files, check them, split, normalise, batch.

One concept per module, every name re-exported here (``from ignite_mnist.data import ...``):

* :mod:`~ignite_mnist.data.datasets`: MNIST and Fashion-MNIST (:class:`DatasetSpec`),
  a folder of images, :class:`DatasetInfo` (what a model keeps of its dataset),
  finding or fetching the files (:func:`prepare_files`);
* :mod:`~ignite_mnist.data.idx`: the IDX files, checked before they are read;
* :mod:`~ignite_mnist.data.splits`: the seeded validation split and each epoch's order;
* :mod:`~ignite_mnist.data.loaders`: :class:`TensorLoader` (the fast path) and
  :class:`ResumableDataLoader` (torchvision's ``DataLoader``), both exactly resumable;
* :mod:`~ignite_mnist.data.builders`: a run's three loaders from one :class:`LoaderOptions`.

Example:
    >>> splits = load_splits(data_dir, "mnist", val_size=200, seed=0)
    >>> train, val, test = build_loaders(splits, LoaderOptions(batch_size=32, seed=0))
    >>> images, labels = next(iter(train))
    >>> images.shape, labels.shape, len(train)
    (torch.Size([32, 1, 28, 28]), torch.Size([32]), 32)
"""

from ignite_mnist.data.builders import LoaderOptions, build_loaders, tensor_loaders, torch_loaders
from ignite_mnist.data.datasets import (
    FASHION_MNIST,
    MNIST,
    Dataset,
    DatasetInfo,
    DatasetSpec,
    dataset_spec,
    load_split_tensors,
    prepare_files,
)
from ignite_mnist.data.idx import check_idx_pair
from ignite_mnist.data.loaders import ResumableDataLoader, TensorLoader, normalise
from ignite_mnist.data.splits import Splits, epoch_permutation, load_splits, split_indices

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
    "load_split_tensors",
    "load_splits",
    "normalise",
    "prepare_files",
    "split_indices",
    "tensor_loaders",
    "torch_loaders",
]
