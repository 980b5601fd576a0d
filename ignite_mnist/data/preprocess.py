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

Image files are untrusted (docs/security.md). :func:`decode_grayscale` (Pillow and
numpy only, no torch) reads only the formats of :data:`IMAGE_FORMATS`, from a regular
file of at most :data:`~ignite_mnist.limits.MAX_IMAGE_BYTES` (opened by
:func:`ignite_mnist.storage.reader.open_file`, the one reader); it checks the size the
header states (pixels, longer side, aspect ratio: :mod:`ignite_mnist.limits`) before
anything is decoded, decodes the first frame only (the one whose size was checked),
shrinks it to :data:`WORKING_SIDE` at once (a JPEG is decoded at 1/2 to 1/8 size by
libjpeg itself), and turns anything Pillow raises into one :class:`ImageError`. The
steps after it are numpy, and Pillow's antialiased bilinear filter for the resize
(torch's ``interpolate(..., antialias=True)`` gives the same within 6e-7). No torch:
``predict`` and the digit pad answer with an exported model without loading it (a
model in torch takes the arrays with ``torch.from_numpy``). Neither torchvision nor
Ignite has the MNIST centring step, so it is written here.

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
from typing import IO, Any, BinaryIO

import numpy as np

from ignite_mnist.errors import IgniteMnistError, UnsafeFileError, first_line
from ignite_mnist.limits import MAX_IMAGE_ASPECT, MAX_IMAGE_BYTES, MAX_IMAGE_PIXELS, MAX_IMAGE_SIDE
from ignite_mnist.storage.reader import open_file

__all__ = [
    "BOX_SIZE",
    "FIELD_SIZE",
    "FORMAT_NAMES",
    "IMAGE_FORMATS",
    "ImageError",
    "centre_digit",
    "check_image_size",
    "decode_grayscale",
    "digit_field",
    "load_grayscale",
    "preprocess_image",
]

BOX_SIZE = 20  # the longer side of the digit after resizing
FIELD_SIZE = 28  # the side of the input field
INK_THRESHOLD = 0.25  # fraction of the brightest stroke that counts as ink when cropping
#: Images are reduced to at most this many pixels a side first: the digit ends up 20 pixels tall anyway.
WORKING_SIDE = 1024
#: The image formats read (Pillow's names); any other file is refused before a decoder sees it.
IMAGE_FORMATS = ("PNG", "JPEG", "BMP", "GIF", "TIFF", "PPM")
#: The same, as the docs and the messages name them (``PPM`` is Pillow's reader of PBM, PGM and PPM).
FORMAT_NAMES = "PNG, JPEG, BMP, GIF, TIFF or PNM (PBM, PGM, PPM)"
_STRIP_PIXELS = 1 << 20  # about how many pixels a strip of a large image has while it is shrunk
#: Modes of more than 8 bits a channel, scaled by their own range (16-bit ones are made 32-bit integers first).
_WIDE_MODES = ("I", "F")


class ImageError(IgniteMnistError):
    """One image cannot be used (unreadable, not an image, too large, or blank)."""


def check_image_size(width: int, height: int, max_pixels: int = MAX_IMAGE_PIXELS) -> None:
    """Refuse an image whose header states a size over the limits of :mod:`ignite_mnist.limits`.

    Raises:
        ValueError: the reason, e.g. ``"9000x8000 pixels is more than 50,000,000; scale the image down ..."``.

    Example:
        >>> check_image_size(4000, 3000)
        >>> check_image_size(30, 1000)
        Traceback (most recent call last):
        ...
        ValueError: 30x1000 pixels: one side is more than 20 times the other; crop it to the digit
    """
    size = f"{width}x{height} pixels"
    advice = "scale the image down (a digit needs a few hundred pixels a side)"
    if min(width, height) < 1:
        raise ValueError(f"{size}: the image is empty")
    if max(width, height) > MAX_IMAGE_SIDE:
        raise ValueError(f"{size}: a side longer than {MAX_IMAGE_SIDE} pixels; {advice}")
    if width * height > max_pixels:
        raise ValueError(f"{size} is more than {max_pixels:,}; {advice}")
    if max(width, height) > MAX_IMAGE_ASPECT * min(width, height):
        raise ValueError(f"{size}: one side is more than {MAX_IMAGE_ASPECT} times the other; crop it to the digit")


def decode_grayscale(source: str | Path | BinaryIO, max_pixels: int = MAX_IMAGE_PIXELS) -> Any:
    """An image file (a path, or an open binary file) as an 8-bit grayscale Pillow image of at most
    :data:`WORKING_SIDE` pixels a side (Pillow and numpy only).

    Raises:
        ImageError: the file is missing, not a regular file, too big, in another format, over the size
            limits, or cannot be decoded (one line, whatever Pillow raised).

    Example:
        >>> decode_grayscale(digit_png).size, decode_grayscale(digit_png).mode
        ((120, 160), 'L')
    """
    from PIL import Image, UnidentifiedImageError

    try:
        with _opened(source) as file, _quiet_pillow(), Image.open(file, formats=IMAGE_FORMATS) as image:
            try:
                check_image_size(image.width, image.height, max_pixels)  # from the header: nothing decoded yet
            except ValueError as error:
                raise ImageError(f"{source}: {error}") from None
            return _small_grayscale(image)
    except ImageError:
        raise
    except FileNotFoundError:
        raise ImageError(f"{source}: no such file") from None
    except UnidentifiedImageError:
        raise ImageError(f"{source}: not a {FORMAT_NAMES} image") from None
    except Image.DecompressionBombError:  # Pillow's own check (at twice its limit, on opening) came before ours
        raise ImageError(f"{source}: more than {max_pixels:,} pixels; scale the image down") from None
    except Exception as error:  # noqa: BLE001 - whatever a decoder raises (OSError, NotImplementedError,
        # struct.error, SyntaxError, MemoryError, IndexError...) is about this one file
        raise ImageError(f"{source}: cannot read image ({type(error).__name__}: {first_line(error)})") from None


@contextlib.contextmanager
def _opened(source: str | Path | BinaryIO) -> Iterator[IO[bytes]]:
    """An open file as it is; a path opened by the one reader (:func:`ignite_mnist.storage.reader.open_file`): a
    regular file (a pipe is refused, not waited on) of at most :data:`~ignite_mnist.limits.MAX_IMAGE_BYTES`."""
    if not isinstance(source, (str, Path)):
        yield source
        return
    try:
        file = open_file(source, MAX_IMAGE_BYTES)
    except UnsafeFileError as error:
        raise ImageError(str(error)) from None
    with file:
        yield file


@contextlib.contextmanager
def _quiet_pillow() -> Iterator[None]:
    """Pillow's warnings about a file (a damaged TIFF tag or EXIF block, its decompression-bomb warning, which
    our lower limits replace) are not printed: the image is read, or refused with one line."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def _small_grayscale(image: Any) -> Any:
    """A just-opened (checked, not yet decoded) image -> 8-bit grayscale, at most :data:`WORKING_SIDE` a side.

    The decoded frame is the only full-size copy ever made: it is shrunk strip by strip (:func:`_reduce`),
    and the EXIF rotation is applied to the small image.
    """
    from PIL import ExifTags, Image

    image.draft("L", (WORKING_SIDE, WORKING_SIDE))  # JPEG: libjpeg decodes at 1/2, 1/4 or 1/8 size, in grey
    image.load()
    orientation = image.getexif().get(ExifTags.Base.Orientation)  # read once decoded: Pillow sets a TIFF upright
    image = _reduce(image, max(1, max(image.size) // (2 * WORKING_SIDE)))
    extrema = _extrema(image) if image.mode in _WIDE_MODES else None  # before the resize, which rings past them
    image.thumbnail((WORKING_SIDE, WORKING_SIDE), reducing_gap=None)
    upright = {2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180, 4: Image.Transpose.FLIP_TOP_BOTTOM,
               5: Image.Transpose.TRANSPOSE, 6: Image.Transpose.ROTATE_270, 7: Image.Transpose.TRANSVERSE,
               8: Image.Transpose.ROTATE_90}.get(orientation)  # PIL.ImageOps.exif_transpose's table
    return _grayscale(image if upright is None else image.transpose(upright), extrema)  # phone photos: upright


def _reduce(image: Any, factor: int) -> Any:
    """``image`` shrunk ``factor`` times (box averages, Pillow's ``reduce``), a strip of rows at a time.

    Pillow's ``reduce`` and ``thumbnail`` copy a whole RGBA image to premultiply it first, and sample a
    palette or 1-bit image (thin strokes lost); strips keep every such copy small. Palette and 1-bit
    pixels become grey (RGBA where transparent), 16-bit ones 32-bit (which ``reduce`` takes).
    """
    from PIL import Image

    def convert(part: Any) -> Any:
        if part.mode in ("1", "P"):
            return part.convert("RGBA" if "transparency" in image.info else "L")
        return part.convert("I") if part.mode.startswith("I;16") else part

    if factor == 1:
        return convert(image)
    width, height = image.size
    step = factor * max(1, _STRIP_PIXELS // (width * factor))  # rows: a multiple of the factor
    strips = [convert(image.crop((0, top, width, min(top + step, height)))).reduce(factor)
              for top in range(0, height, step)]
    small = Image.new(strips[0].mode, (strips[0].width, sum(strip.height for strip in strips)))
    for index, strip in enumerate(strips):
        small.paste(strip, (0, index * step // factor))
    return small


def _extrema(image: Any) -> tuple[float, float]:
    """The lowest and highest finite value of a 32-bit integer or float image (0, 0 when it has none)."""
    if image.mode != "F":
        low, high = image.getextrema()
        return float(low), float(high)
    values = np.asarray(image)
    finite = values[np.isfinite(values)]
    return (float(finite.min()), float(finite.max())) if finite.size else (0.0, 0.0)


def _grayscale(image: Any, extrema: tuple[float, float] | None) -> Any:
    """A small Pillow image as 8-bit grayscale: transparency laid on white paper; 32-bit integer and float pixels
    (16-bit ones were made 32-bit) scaled from ``extrema`` to 0-255 (Pillow's plain conversion would clip them)."""
    from PIL import Image

    if extrema is None:
        if "A" in image.getbands() or "transparency" in image.info:  # transparent background: on white paper
            image = Image.alpha_composite(Image.new("RGBA", image.size, "white"), image.convert("RGBA"))
        return image.convert("L")
    low, high = extrema
    values = np.nan_to_num(np.asarray(image, dtype=np.float64), nan=low, posinf=high, neginf=low)
    scaled = (values - low) * (255 / (high - low)) if high > low else np.zeros_like(values)
    return Image.fromarray(np.rint(scaled.clip(0, 255)).astype(np.uint8))


def load_grayscale(path: str | Path | BinaryIO, max_pixels: int = MAX_IMAGE_PIXELS) -> np.ndarray:
    """Read an image file (:data:`FORMAT_NAMES`; a path or an open binary file) as ``float32 (H, W)`` in 0-1,
    at most :data:`WORKING_SIDE` pixels a side (:func:`decode_grayscale`).

    Raises:
        ImageError: the file is missing, unreadable, too large or not an image.

    Example:
        >>> load_grayscale(digit_png).shape
        (160, 120)
    """
    return np.asarray(decode_grayscale(path, max_pixels), dtype=np.float32) / 255


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


def digit_field(path: str | Path | BinaryIO, max_pixels: int = MAX_IMAGE_PIXELS) -> np.ndarray:
    """An image file -> its ``float32 (28, 28)`` MNIST-style field in 0-1 (steps 1-6 above).

    Raises:
        ImageError: the file is unreadable, not an image, or blank.

    Example:
        >>> field = digit_field(digit_png)
        >>> field.shape, float(field.max()), float(field[0, 0])  # strokes at full ink, background at 0
        ((28, 28), 1.0, 0.0)
    """
    strokes = _to_light_on_dark(load_grayscale(path, max_pixels))
    try:
        return centre_digit(strokes)
    except ValueError as error:
        raise ImageError(f"{path}: {error}") from None


def preprocess_image(path: str | Path | BinaryIO, *, mean: float, std: float,
                     max_pixels: int = MAX_IMAGE_PIXELS) -> np.ndarray:
    """An image file -> the normalised ``float32 (1, 28, 28)`` input the models take (all seven steps).

    Raises:
        ImageError: the file is unreadable, not an image, or blank.

    Example:
        >>> x = preprocess_image(digit_png, mean=0.1307, std=0.3081)
        >>> round(float(x.max()), 2), round(float(x.min()), 2)
        (2.82, -0.42)
    """
    field: np.ndarray = (digit_field(path, max_pixels) - np.float32(mean)) / np.float32(std)
    return field[None]
