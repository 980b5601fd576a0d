"""``--dataset folder:PATH``: your own digit images, one folder per class.

The layout is torchvision's ``ImageFolder``, once for training and once for testing::

    PATH/train/<class name>/<any name>.png      (PNG, JPEG, BMP, TIFF or PNM: torchvision's image extensions)
    PATH/test/<class name>/<any name>.png

Class names are the folder names, sorted (``0`` ... ``9`` for digits); train and
test must have the same ones. Every image goes through the preprocessing
``ignite-mnist predict`` applies (:func:`ignite_mnist.data.preprocess.digit_field`:
grayscale, light strokes on dark, cropped, scaled into a 20-pixel box, centred
by mass in 28x28), so a model trained on a folder sees what it will be shown
later. The normalisation (mean and standard deviation) is measured on the
training images. The validation split is held out of ``train/`` as for MNIST.
torchvision supplies the folder listing (``ImageFolder``); the preprocessing is ours, and so is
the check that no symbolic link takes the listing outside a class folder (:func:`check_links`:
a link to a folder, or to a file elsewhere, is refused with one line; ``ImageFolder`` would
follow it and label everything it finds with the link's class).

Example:
    >>> dataset = FolderDataset(folder)  # a folder written by the example set-up
    >>> dataset.classes
    ('0', '1')
    >>> images, labels = dataset.load_arrays(None, train=True)
    >>> images.shape, images.dtype, labels.tolist()
    ((4, 28, 28), dtype('uint8'), [0, 0, 1, 1])
"""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ignite_mnist.data.preprocess import ImageError, digit_field
from ignite_mnist.errors import DataError
from ignite_mnist.settings.config import FOLDER_PREFIX

if TYPE_CHECKING:
    import torch
    import torch.utils.data

__all__ = ["FolderDataset", "check_links", "folder_dataset"]

LAYOUT = "PATH/train/<class>/<image> and PATH/test/<class>/<image>"


class FolderDataset:
    """A dataset of image files in ``PATH/train/<class>/`` and ``PATH/test/<class>/``.

    Args:
        path: the folder holding ``train/`` and ``test/``.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.name = FOLDER_PREFIX + str(path)
        self._arrays: dict[bool, tuple[np.ndarray, np.ndarray]] = {}

    def _split_dir(self, train: bool) -> Path:
        split = self.path / ("train" if train else "test")
        if not self.path.is_dir():
            raise DataError(f"{self.name}: no such folder; it must hold {LAYOUT}")
        if not split.is_dir():
            raise DataError(f"{self.name}: no {split.name}/ folder in {self.path}; the layout is {LAYOUT}")
        return split

    def _listing(self, train: bool) -> Any:
        from torchvision.datasets import ImageFolder

        split = self._split_dir(train)
        check_links(split)
        try:
            return ImageFolder(str(split), loader=str)  # the listing only: files are read below
        except (FileNotFoundError, OSError) as error:
            raise DataError(f"{split}: {error}; the layout is {LAYOUT}") from None

    @functools.cached_property
    def classes(self) -> tuple[str, ...]:
        """The class names: the sub-folders of ``train/`` (and of ``test/``), sorted."""
        train, test = self._listing(True).classes, self._listing(False).classes
        if train != test:
            raise DataError(f"{self.name}: train/ has classes {', '.join(train)} but test/ has {', '.join(test)}; "
                            "both need the same class folders")
        return tuple(train)

    def load_arrays(self, root: Any, train: bool) -> tuple[np.ndarray, np.ndarray]:
        """The preprocessed ``uint8 (N, 28, 28)`` images and ``int64`` labels of one split (``root`` is unused)."""
        if train not in self._arrays:
            self.classes  # noqa: B018 - checks the class folders agree
            samples = self._listing(train).samples
            fields = []
            for file, _ in samples:
                try:
                    fields.append(digit_field(file))
                except ImageError as error:
                    raise DataError(f"{error}; fix or remove the file") from None
            images = np.rint(np.stack(fields) * 255).astype(np.uint8)
            self._arrays[train] = images, np.array([label for _, label in samples], dtype=np.int64)
        return self._arrays[train]

    @functools.cached_property
    def _statistics(self) -> tuple[float, float]:
        images = self.load_arrays(None, train=True)[0].astype(np.float32) / 255
        return float(images.mean()), float(images.std(ddof=1))

    @property
    def mean(self) -> float:
        """Mean pixel value of the preprocessed training images (0-1 scale)."""
        return self._statistics[0]

    @property
    def std(self) -> float:
        """Standard deviation of the preprocessed training pixels."""
        return self._statistics[1]

    def torchvision_dataset(self, root: Any, train: bool) -> torch.utils.data.Dataset[Any]:
        """The split as torchvision's ``ImageFolder``, each image preprocessed and normalised when read."""
        from torchvision.datasets import ImageFolder

        dataset: torch.utils.data.Dataset[Any] = ImageFolder(str(self._split_dir(train)), loader=digit_field,
                                                             transform=_Normalise(self.mean, self.std))
        return dataset


class _Normalise:
    """``(28, 28)`` field in 0-1 -> normalised ``(1, 28, 28)`` (a class, so DataLoader workers can pickle it)."""

    def __init__(self, mean: float, std: float) -> None:
        self.mean, self.std = mean, std

    def __call__(self, field: np.ndarray) -> torch.Tensor:
        import torch

        return torch.from_numpy(field).unsqueeze(0).sub(self.mean).div(self.std)


def check_links(split: str | Path) -> None:
    """Refuse symbolic links that would make torchvision's listing (which follows them) read images from
    outside their class folder: a class folder that is a link, a link to a folder, or a link to a file
    elsewhere. A link to a file in the same class folder is fine.

    Raises:
        DataError: naming the first such link and where it points.
    """
    for class_dir in sorted(Path(split).iterdir()):
        if class_dir.is_symlink():
            _refuse_link(class_dir, "a class folder may not be a link")
        if not class_dir.is_dir():
            continue
        inside = os.path.realpath(class_dir)
        for folder, dirs, files in os.walk(class_dir):  # links to folders are listed, not entered
            for entry in (Path(folder) / name for name in sorted(dirs + files)):
                if entry.is_symlink() and (entry.is_dir() or os.path.commonpath(
                        [inside, os.path.realpath(entry)]) != inside):
                    _refuse_link(entry, "images may link only to files in their own class folder")
                if entry.name in files and not entry.is_file():  # a pipe would block, a device never end
                    raise DataError(f"{entry}: not a regular file (a device or a pipe); remove it")


def _refuse_link(entry: Path, rule: str) -> None:
    raise DataError(f"{entry} is a symbolic link to {os.path.realpath(entry)}; {rule} (copy the images in "
                    "instead), so the link was not followed")


@functools.lru_cache(maxsize=8)
def folder_dataset(path: str) -> FolderDataset:
    """The :class:`FolderDataset` at ``path`` (one per path and process, so images are read once).

    Raises:
        DataError: the folder is missing or not in the layout above.
    """
    dataset = FolderDataset(path)
    dataset.classes  # noqa: B018 - fail early on a wrong layout
    if len(dataset.classes) < 2:
        raise DataError(f"{dataset.name}: needs at least two class folders in train/, found {len(dataset.classes)}")
    return dataset
