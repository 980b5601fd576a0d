"""IDX files, the format MNIST-style datasets come in: their names, checks before reading, unpacking.

torchvision reads IDX files without checking them; here every pair is checked first
(magic numbers, sizes against the headers, 28x28 images, equal counts, labels in
range), so a truncated or foreign file is reported as such, and a gzipped file is
unpacked atomically. An IDX file of unsigned bytes is its array after a header, so
:func:`read_idx_pair` reads it with numpy alone (``numpy.fromfile``: the bytes as they
are on disk, no decoding; no torch, so an exported model is evaluated without it).

Example:
    >>> ALL_FILES[:2]
    ('train-images-idx3-ubyte', 'train-labels-idx1-ubyte')
"""

from __future__ import annotations

import gzip
import shutil
import zlib
from pathlib import Path

import numpy as np

from ignite_mnist.errors import DataError, WriteError
from ignite_mnist.storage.files import WRITE_ERRNOS, replacing

__all__ = ["ALL_FILES", "IMAGES_MAGIC", "LABELS_MAGIC", "check_idx_pair", "file_names", "read_idx_pair", "unpack_gz"]

IMAGES_MAGIC = 0x00000803  # unsigned bytes, 3 dimensions
LABELS_MAGIC = 0x00000801  # unsigned bytes, 1 dimension


def file_names(train: bool) -> tuple[str, str]:
    """The images and labels files of the training (``train``) or test split."""
    prefix = "train" if train else "t10k"
    return f"{prefix}-images-idx3-ubyte", f"{prefix}-labels-idx1-ubyte"


#: The four files of a dataset, training split first.
ALL_FILES = file_names(True) + file_names(False)


def unpack_gz(source: Path, target: Path) -> None:
    """Unpack ``source`` to ``target`` atomically.

    Raises:
        DataError: ``source`` is damaged (replace it) or ``target`` cannot be written (unpack it elsewhere).
    """
    writable = f"unpack {source} into a writable folder yourself and point --data-dir at it"
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        with gzip.open(source, "rb") as packed, replacing(target, "wb") as unpacked:
            shutil.copyfileobj(packed, unpacked)
    except WriteError as error:
        raise DataError(f"{error}; {writable}") from None
    except OSError as error:
        if error.errno in WRITE_ERRNOS:  # the folder could not be created
            raise DataError(f"{WriteError(target.parent, error)}; {writable}") from None
        raise DataError(f"{source}: cannot unpack ({error}); replace the file") from None
    except (EOFError, zlib.error) as error:
        raise DataError(f"{source}: cannot unpack ({error}); replace the file") from None


def _read_header(path: Path, magic: int, ndim: int) -> tuple[int, ...]:
    size = path.stat().st_size
    if size == 0:
        raise DataError(f"{path}: file is empty; delete it and download again or point --data-dir elsewhere")
    header_bytes = 4 + 4 * ndim
    with open(path, "rb") as f:
        header = f.read(header_bytes)
    if len(header) < header_bytes:
        raise DataError(f"{path}: truncated IDX header ({size} bytes); replace the file")
    found = int.from_bytes(header[:4], "big")
    if found != magic:
        raise DataError(
            f"{path}: wrong magic number 0x{found:08x} (expected 0x{magic:08x}); not an IDX file of this kind"
        )
    dims = tuple(int.from_bytes(header[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    payload = 1
    for d in dims:
        payload *= d
    if size != header_bytes + payload:
        raise DataError(
            f"{path}: {'truncated' if size < header_bytes + payload else 'oversized'} IDX file: "
            f"{size} bytes, header says {header_bytes + payload}; replace the file"
        )
    return dims


def check_idx_pair(images_path: str | Path, labels_path: str | Path, num_classes: int = 10) -> int:
    """Check an images/labels IDX pair before it is read; return the sample count.

    Checks magic numbers, sizes against the headers, 28x28 images, equal counts and
    labels in ``range(num_classes)``.

    Raises:
        DataError: naming the file and the problem.

    Example:
        >>> from pathlib import Path
        >>> raw = Path(data_dir) / "MNIST" / "raw"
        >>> check_idx_pair(raw / "t10k-images-idx3-ubyte", raw / "t10k-labels-idx1-ubyte")
        300
    """
    images_path, labels_path = Path(images_path), Path(labels_path)
    count, rows, cols = _read_header(images_path, IMAGES_MAGIC, 3)
    if (rows, cols) != (28, 28):
        raise DataError(f"{images_path}: images are {rows}x{cols}, expected 28x28")
    (label_count,) = _read_header(labels_path, LABELS_MAGIC, 1)
    if label_count != count:
        raise DataError(f"{labels_path}: {label_count} labels but {images_path.name} holds {count} images")
    labels = np.fromfile(labels_path, dtype=np.uint8, count=count, offset=8)
    if labels.size and int(labels.max()) >= num_classes:
        bad = int(np.flatnonzero(labels >= num_classes)[0])
        raise DataError(f"{labels_path}: label {int(labels[bad])} at index {bad} is outside 0-{num_classes - 1}")
    return count


def read_idx_pair(images_path: str | Path, labels_path: str | Path,
                  num_classes: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """The ``uint8 (N, 28, 28)`` images and ``int64 (N,)`` labels of an IDX pair, checked first
    (:func:`check_idx_pair`).

    Raises:
        DataError: naming the file and the problem.

    Example:
        >>> raw = Path(data_dir) / "MNIST" / "raw"
        >>> images, labels = read_idx_pair(raw / "t10k-images-idx3-ubyte", raw / "t10k-labels-idx1-ubyte")
        >>> images.shape, images.dtype, labels.dtype
        ((300, 28, 28), dtype('uint8'), dtype('int64'))
    """
    count = check_idx_pair(images_path, labels_path, num_classes)
    images = np.fromfile(images_path, dtype=np.uint8, count=count * 28 * 28, offset=16)
    labels = np.fromfile(labels_path, dtype=np.uint8, count=count, offset=8)
    if images.size != count * 28 * 28 or labels.size != count:  # the files changed after the check
        raise DataError(f"{images_path}: changed while it was read; read it again when nothing is writing it")
    return images.reshape(count, 28, 28), labels.astype(np.int64)
