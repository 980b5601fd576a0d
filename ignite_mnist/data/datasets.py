"""The datasets: MNIST and Fashion-MNIST (IDX files), or a folder of images; what a model keeps of its dataset.

A :class:`DatasetSpec` names an IDX dataset; ``--dataset`` picks one by name from
:data:`~ignite_mnist.registry.DATASETS`, or a folder (:mod:`ignite_mnist.data.folders`).
The files live in torchvision's ``<root>/<Name>/raw/`` layout, and torchvision downloads
them when they are missing. What torchvision lacks is added here and in
:mod:`ignite_mnist.data.idx`: gzipped or Debian-installed files are unpacked into
that layout, every IDX file is checked before it is read, and offline failures name
the folder and the files that were expected. The files are read with numpy
(:func:`~ignite_mnist.data.idx.read_idx_pair`); torchvision is imported only to download
them or for its ``Dataset`` (``--loader torch``), and this module imports neither it nor
torch, so an exported model is evaluated without them.

Example:
    >>> images, labels = load_split_tensors(data_dir, "mnist", train=False)
    >>> images.shape, labels.dtype
    (torch.Size([300, 28, 28]), torch.int64)
"""

from __future__ import annotations

import contextlib
import math
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from ignite_mnist.data.idx import ALL_FILES, file_names, read_idx_pair, unpack_gz
from ignite_mnist.errors import DataError
from ignite_mnist.limits import MAX_CLASSES
from ignite_mnist.registry import DATASETS
from ignite_mnist.settings.config import DATA_DIR_ENV, FOLDER_PREFIX

if TYPE_CHECKING:
    import torch
    import torch.utils.data

__all__ = [
    "FASHION_MNIST", "MNIST", "Dataset", "DatasetInfo", "DatasetSpec", "dataset_spec", "load_split_arrays",
    "load_split_tensors", "prepare_files",
]

DOWNLOAD_TIMEOUT_SECONDS = 15.0


@dataclass(frozen=True)
class DatasetSpec:
    """What ignite-mnist needs to know about one dataset."""

    name: str
    folder: str  # the folder torchvision keeps it in under the root, and the name of its dataset class there
    mean: float
    std: float
    classes: tuple[str, ...]
    debian_dir: Path | None = None

    @property
    def torchvision_class(self) -> Any:
        """torchvision's dataset class of it (``torchvision.datasets.MNIST``), imported only now."""
        import torchvision.datasets

        return getattr(torchvision.datasets, self.folder)

    def raw_dir(self, root: str | Path) -> Path:
        return Path(root) / self.folder / "raw"

    def load_arrays(self, root: str | Path, train: bool) -> tuple[np.ndarray, np.ndarray]:
        """The raw ``uint8`` images ``(N, 28, 28)`` and ``int64`` labels ``(N,)`` of one split, checked first."""
        raw = prepare_files(root, self.name)
        images_name, labels_name = file_names(train)
        return read_idx_pair(raw / images_name, raw / labels_name, len(self.classes))

    def torchvision_dataset(self, root: str | Path, train: bool) -> torch.utils.data.Dataset[Any]:
        """The split as torchvision's dataset class with ``ToTensor`` + ``Normalize`` (the classic path)."""
        from torchvision import transforms

        to_tensor = transforms.Compose([transforms.ToTensor(), transforms.Normalize((self.mean,), (self.std,))])
        dataset: torch.utils.data.Dataset[Any] = self.torchvision_class(str(root), train=train, download=False,
                                                                        transform=to_tensor)
        return dataset


MNIST = DatasetSpec("mnist", "MNIST", 0.1307, 0.3081, tuple(str(d) for d in range(10)))
FASHION_MNIST = DatasetSpec(
    "fashion-mnist",
    "FashionMNIST",
    0.2860,
    0.3530,
    ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"),
    debian_dir=Path("/usr/share/datasets/fashion-mnist"),
)


@dataclass(frozen=True)
class DatasetInfo:
    """What a trained model needs to know of its dataset: name, class names, normalisation.

    Every checkpoint of the managed run holds it (``"dataset"``), so a model can be
    used (``predict``) without the dataset at hand.

    Example:
        >>> DatasetInfo.of(MNIST).to_dict()["mean"]
        0.1307
    """

    name: str
    classes: tuple[str, ...]
    mean: float
    std: float

    @classmethod
    def of(cls, dataset: Dataset) -> DatasetInfo:
        return cls(dataset.name, tuple(dataset.classes), float(dataset.mean), float(dataset.std))

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "classes": list(self.classes), "mean": self.mean, "std": self.std}

    @classmethod
    def from_dict(cls, values: Any) -> DatasetInfo:
        """Read back ``to_dict``'s output (from a checkpoint or an exported file's metadata), checked.

        Raises:
            ValueError: a missing entry or one of the wrong kind (the message says which).

        Example:
            >>> DatasetInfo.from_dict({"name": "mnist", "classes": ["0", "1"], "mean": 0.1, "std": 0.3}).classes
            ('0', '1')
            >>> DatasetInfo.from_dict({"classes": ["0", "1"], "mean": 0.1, "std": 0.3})
            Traceback (most recent call last):
            ...
            ValueError: dataset entry: name must be text, got None
        """
        get = values.get if isinstance(values, dict) else (lambda key: None)
        name, classes, mean, std = (get(key) for key in ("name", "classes", "mean", "std"))
        if not isinstance(name, str):
            raise ValueError(f"dataset entry: name must be text, got {repr(name)[:40]}")  # noqa: TRY004 - one kind
        if not (isinstance(classes, list) and 2 <= len(classes) <= MAX_CLASSES
                and all(isinstance(c, str) for c in classes)):
            raise ValueError(f"dataset entry: classes must be a list of 2 to {MAX_CLASSES} names")
        mean, std = (_finite(key, value) for key, value in (("mean", mean), ("std", std)))
        if std <= 0:
            raise ValueError(f"dataset entry: std must be > 0, got {std}")
        return cls(name, tuple(classes), mean, std)


def _finite(key: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"dataset entry: {key} must be a finite number, got {repr(value)[:40]}")
    return float(value)


class Dataset(Protocol):
    """What training and inference need of a dataset: an IDX :class:`DatasetSpec` or a
    :class:`~ignite_mnist.data.folders.FolderDataset`."""

    @property
    def name(self) -> str: ...

    @property
    def classes(self) -> tuple[str, ...]: ...

    @property
    def mean(self) -> float: ...

    @property
    def std(self) -> float: ...

    def load_arrays(self, root: str | Path, train: bool) -> tuple[np.ndarray, np.ndarray]: ...

    def torchvision_dataset(self, root: str | Path, train: bool) -> torch.utils.data.Dataset[Any]: ...


def dataset_spec(name: str) -> Dataset:
    """The dataset ``--dataset`` names: one of :data:`ignite_mnist.registry.DATASETS`, or ``folder:PATH``.

    Example:
        >>> dataset_spec("fashion-mnist").classes[0]
        'T-shirt/top'
    """
    if name.startswith(FOLDER_PREFIX):
        from ignite_mnist.data.folders import folder_dataset  # torchvision lists the folder

        return folder_dataset(name.removeprefix(FOLDER_PREFIX))
    return _registered(name)


def _registered(name: str) -> DatasetSpec:
    """A dataset of :data:`ignite_mnist.registry.DATASETS` (MNIST-style IDX files)."""
    spec: DatasetSpec = DATASETS.load(name)
    return spec


def _download(spec: DatasetSpec, root: Path) -> str | None:
    """Let torchvision fetch the files; return why it failed, or None."""
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(DOWNLOAD_TIMEOUT_SECONDS)
    try:
        spec.torchvision_class(str(root), train=True, download=True)
    except Exception as error:  # noqa: BLE001 - torchvision raises RuntimeError, URLError, OSError...
        lines = str(error).strip().splitlines()  # torchvision lists each mirror tried; the last line is why
        return f"{type(error).__name__}: {lines[-1] if lines else ''}".strip()
    finally:
        socket.setdefaulttimeout(previous)
    return None


def prepare_files(root: str | Path, dataset: str, *, download: bool = True) -> Path:
    """Make sure the four IDX files sit uncompressed in ``<root>/<Name>/raw/``.

    Missing files are unpacked from ``.gz`` siblings (or, for Fashion-MNIST, from
    Debian's ``dataset-fashion-mnist`` package), else downloaded by torchvision.

    Returns:
        The raw folder.

    Raises:
        DataError: when files are still missing; the message names the folder,
            the four files and how to point ``--data-dir`` at existing ones.

    Example:
        >>> prepare_files(data_dir, "mnist").relative_to(data_dir)
        PosixPath('MNIST/raw')
    """
    spec = _registered(dataset)
    raw = spec.raw_dir(root)
    for name in ALL_FILES:
        if (raw / name).is_file():
            continue
        for packed in (raw / f"{name}.gz", (spec.debian_dir / f"{name}.gz") if spec.debian_dir else None):
            if packed is not None and packed.is_file():
                unpack_gz(packed, raw / name)
                break
    missing = [name for name in ALL_FILES if not (raw / name).is_file()]
    if missing and download:
        absent = [folder for folder in (raw, raw.parent, Path(root)) if not folder.exists()]
        reason = _download(spec, Path(root))
        missing = [name for name in ALL_FILES if not (raw / name).is_file()]
        if missing:
            for folder in absent:  # the download made them; left empty, they would only mislead
                with contextlib.suppress(OSError):
                    folder.rmdir()
            raise DataError(
                f"{spec.name} files missing in {raw} (expected {', '.join(ALL_FILES)}) and the download "
                f"failed ({reason}); copy them there or point --data-dir (or ${DATA_DIR_ENV}) "
                f"at a folder holding {spec.folder}/raw/"
            )
    elif missing:
        raise DataError(f"{spec.name} files missing in {raw}: {', '.join(missing)}; point --data-dir at them")
    return raw


def load_split_arrays(root: str | Path, dataset: str, train: bool) -> tuple[np.ndarray, np.ndarray]:
    """The raw ``uint8`` images ``(N, 28, 28)`` and ``int64`` labels ``(N,)`` of one split of ``--dataset``, as
    numpy arrays (no torch).

    Example:
        >>> images, labels = load_split_arrays(data_dir, "mnist", train=False)
        >>> images.shape, labels.dtype
        ((300, 28, 28), dtype('int64'))
    """
    return dataset_spec(dataset).load_arrays(root, train)


def load_split_tensors(root: str | Path, dataset: str, train: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """The raw ``uint8`` images ``(N, 28, 28)`` and ``int64`` labels ``(N,)`` of one split of ``--dataset``."""
    import torch

    images, labels = load_split_arrays(root, dataset, train)
    return torch.from_numpy(images), torch.from_numpy(labels)
