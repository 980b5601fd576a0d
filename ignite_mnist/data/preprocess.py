"""Turn a photo or scan of a digit into a 28x28 input the way MNIST itself was made.

MNIST digits are light strokes on a black field: each digit was scaled, keeping
its aspect ratio, to fit a 20x20 box, then placed in a 28x28 field so that its
centre of mass sits in the middle. :func:`preprocess_image` applies the same
recipe to an image of any size:

1. grayscale (Pillow), after applying a photo's EXIF rotation and laying a
   transparent background on white;
2. a light background (the median of the border pixels is above mid-grey) is
   inverted, so dark ink on paper becomes light strokes on black;
3. the background level is subtracted and the contrast stretched to 0-1;
4. the image is cropped to the bounding box of the strokes;
5. the crop is resized (antialiased) so that its longer side is 20 pixels;
6. it is pasted into a 28x28 field with its centre of mass at the centre;
7. it is normalised with the dataset's mean and std, like the training data.

Pillow (a torchvision dependency) reads the files and resizes (its antialiased
bilinear filter, which torch's ``interpolate(..., antialias=True)`` reproduces); the
rest is numpy. No torch: ``predict`` and the digit pad answer with an exported model
without loading it (a model in torch takes the arrays with ``torch.from_numpy``).
Neither torchvision nor Ignite has the MNIST centring step, so it is written here.

Example:
    >>> image = preprocess_image(digit_png, mean=0.1307, std=0.3081)  # dark ink on white, 120x160
    >>> image.shape, image.dtype
    ((1, 28, 28), dtype('float32'))
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from ignite_mnist.errors import IgniteMnistError

__all__ = ["BOX_SIZE", "FIELD_SIZE", "ImageError", "centre_digit", "digit_field", "load_grayscale", "preprocess_image"]

BOX_SIZE = 20  # the longer side of the digit after resizing
FIELD_SIZE = 28  # the side of the input field
INK_THRESHOLD = 0.25  # fraction of the brightest stroke that counts as ink when cropping
#: Larger images are refused before they are decoded (a 12000x12000 PNG would need gigabytes).
MAX_PIXELS = 50_000_000
#: Images are reduced to at most this many pixels a side first: the digit ends up 20 pixels tall anyway.
WORKING_SIDE = 1024


class ImageError(IgniteMnistError):
    """One image cannot be used (unreadable, not an image, or blank)."""


def load_grayscale(path: str | Path | BinaryIO) -> np.ndarray:
    """Read an image file (PNG, JPEG, anything Pillow reads; a path or an open binary file) as ``float32 (H, W)``
    in 0-1.

    Raises:
        ImageError: the file is missing, unreadable or not an image.

    Example:
        >>> load_grayscale(digit_png).shape
        (160, 120)
    """
    from PIL import Image, ImageOps, UnidentifiedImageError

    if isinstance(path, (str, Path)) and Path(path).exists() and not Path(path).is_file():  # would block: a pipe
        raise ImageError(f"{path}: not a regular file (a folder, a device or a pipe)")
    try:
        with _our_pixel_limit(), Image.open(path) as image:
            if image.width * image.height > MAX_PIXELS:  # read from the header: refused before decoding
                raise ImageError(f"{path}: {image.width}x{image.height} pixels is more than {MAX_PIXELS // 10**6} "
                                 f"million; scale the image down (a digit needs a few hundred pixels a side)")
            image.draft("L", (WORKING_SIDE, WORKING_SIDE))  # JPEG: decode at a reduced size right away
            image = ImageOps.exif_transpose(image)  # phone photos: apply the EXIF rotation
            image.thumbnail((WORKING_SIDE, WORKING_SIDE))  # bounded memory for the steps below
            gray = _grayscale(image)
    except FileNotFoundError:
        raise ImageError(f"{path}: no such file") from None
    except UnidentifiedImageError:
        raise ImageError(f"{path}: not an image Pillow can read (use PNG or JPEG)") from None
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as error:
        raise ImageError(f"{path}: cannot read image ({error})") from None
    return np.asarray(gray, dtype=np.float32) / 255


@contextlib.contextmanager
def _our_pixel_limit() -> Iterator[None]:
    """Pillow's decompression-bomb warning gives way to :data:`MAX_PIXELS`, which is lower and a one-line error."""
    from PIL import Image

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        yield


def _grayscale(image: Any) -> Any:
    """A Pillow image as 8-bit grayscale: transparency laid on white paper, 16-bit and float pixels scaled
    by their own range (Pillow's plain conversion would clip them to black)."""
    from PIL import Image

    if "A" in image.getbands():  # transparent background: lay it on white paper
        image = Image.alpha_composite(Image.new("RGBA", image.size, "white"), image.convert("RGBA"))
    if image.mode in ("F", "I", "I;16", "I;16B", "I;16L"):
        values = np.asarray(image.convert("F"), dtype=np.float32)
        low, high = float(values.min()), float(values.max())
        scaled = (values - low) / (high - low) * 255 if high > low else np.zeros_like(values)
        return Image.fromarray(np.rint(scaled).astype(np.uint8))
    return image.convert("L")


def _median(values: np.ndarray) -> float:
    """The lower middle value (of an even count, the smaller of the two middle ones, as ``torch.median``)."""
    return float(np.partition(values, (values.size - 1) // 2)[(values.size - 1) // 2])


def _to_light_on_dark(image: np.ndarray) -> np.ndarray:
    """Invert a light background, subtract the background level and stretch to 0-1."""
    border = np.concatenate([image[0], image[-1], image[:, 0], image[:, -1]])
    if _median(border) > 0.5:
        image, border = 1 - image, 1 - border
    ink = np.clip(image - _median(border), 0, None)
    peak = float(ink.max())
    return ink / peak if peak > 0 else ink


def _resized(crop: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``crop`` resized to ``(height, width)`` by Pillow's antialiased bilinear filter, in 0-1."""
    from PIL import Image

    box = Image.fromarray(np.ascontiguousarray(crop, dtype=np.float32), mode="F").resize(
        (size[1], size[0]), Image.Resampling.BILINEAR)
    return np.clip(np.asarray(box, dtype=np.float32), 0, 1)


def centre_digit(image: np.ndarray) -> np.ndarray:
    """Light-on-dark ``(H, W)`` strokes in 0-1 -> a ``(28, 28)`` MNIST-style field.

    Crops to the strokes, resizes the longer side to 20 pixels keeping the aspect
    ratio, and places the centre of mass at the field's centre.

    Raises:
        ValueError: the image holds no strokes.

    Example:
        >>> strokes = np.zeros((100, 60), dtype=np.float32)
        >>> strokes[10:90, 25:35] = 1.0  # a tall bar, off-centre
        >>> field = centre_digit(strokes)
        >>> field.shape, int((field.sum(1) > 0).sum())  # 20 rows tall
        ((28, 28), 20)
    """
    image = np.asarray(image, dtype=np.float32)
    rows = np.flatnonzero((image > INK_THRESHOLD).any(axis=1))
    cols = np.flatnonzero((image > INK_THRESHOLD).any(axis=0))
    if len(rows) == 0:
        raise ValueError("no digit found (the image is blank)")
    crop = image[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    height, width = crop.shape
    scale = BOX_SIZE / max(height, width)
    size = (max(1, round(height * scale)), max(1, round(width * scale)))
    box = _resized(crop, size)

    total = box.sum()
    centre_y = float((box.sum(1) * np.arange(size[0])).sum() / total)
    centre_x = float((box.sum(0) * np.arange(size[1])).sum() / total)
    middle = FIELD_SIZE / 2  # where MNIST digits have their centre of mass (measured: 14.0, 14.0)
    top = min(max(round(middle - centre_y), 0), FIELD_SIZE - size[0])
    left = min(max(round(middle - centre_x), 0), FIELD_SIZE - size[1])
    field = np.zeros((FIELD_SIZE, FIELD_SIZE), dtype=np.float32)
    field[top : top + size[0], left : left + size[1]] = box
    return field


def digit_field(path: str | Path | BinaryIO) -> np.ndarray:
    """An image file -> its ``float32 (28, 28)`` MNIST-style field in 0-1 (steps 1-6 above).

    Raises:
        ImageError: the file is unreadable, not an image, or blank.

    Example:
        >>> field = digit_field(digit_png)
        >>> field.shape, float(field.max()), float(field[0, 0])  # strokes at full ink, background at 0
        ((28, 28), 1.0, 0.0)
    """
    strokes = _to_light_on_dark(load_grayscale(path))
    try:
        return centre_digit(strokes)
    except ValueError as error:
        raise ImageError(f"{path}: {error}") from None


def preprocess_image(path: str | Path | BinaryIO, *, mean: float, std: float) -> np.ndarray:
    """An image file -> the normalised ``float32 (1, 28, 28)`` input the models take (all seven steps).

    Raises:
        ImageError: the file is unreadable, not an image, or blank.

    Example:
        >>> x = preprocess_image(digit_png, mean=0.1307, std=0.3081)
        >>> round(float(x.max()), 2), round(float(x.min()), 2)
        (2.82, -0.42)
    """
    return ((digit_field(path) - np.float32(mean)) / np.float32(std))[None]
