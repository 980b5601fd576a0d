"""Image preprocessing: MNIST digits come back as they were; crops, centring, inversion, bad files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ignite_mnist.data import load_split_arrays
from ignite_mnist.data.preprocess import (
    BOX_SIZE,
    FORMAT_NAMES,
    ImageError,
    centre_digit,
    load_grayscale,
    preprocess_image,
)
from tests.security.images import bar, claiming, dds_unimplemented, digit_image


def _field(path: Path) -> np.ndarray:
    """The preprocessed image in 0-1 units (mean 0, std 1 undo nothing)."""
    return preprocess_image(path, mean=0.0, std=1.0)[0]


def test_real_mnist_digits_come_back_almost_unchanged(mnist_root: Path, tmp_path: Path) -> None:
    """MNIST digits are already cropped, 20-pixel boxed and centred: the recipe must leave them be."""
    images, _ = load_split_arrays(mnist_root, "mnist", train=False)
    differences = []
    for index, image in enumerate(images[:50]):
        path = tmp_path / f"{index}.png"
        Image.fromarray(image).save(path)
        differences.append(float(np.abs(_field(path) - image / 255).mean()))
    assert float(np.mean(differences)) < 0.01
    assert max(differences) < 0.15


def test_centring_puts_a_20_pixel_box_with_its_centre_of_mass_in_the_middle() -> None:
    strokes = np.zeros((300, 120), dtype=np.float32)
    strokes[20:260, 10:50] = 1.0  # a tall bar near the left edge
    strokes[240:260, 10:110] = 1.0  # and a foot to the right (an "L")
    field = centre_digit(strokes)
    rows, cols = np.flatnonzero((field > 0.05).any(1)), np.flatnonzero((field > 0.05).any(0))
    assert int(rows[-1] - rows[0] + 1) == BOX_SIZE  # the longer side
    assert int(cols[-1] - cols[0] + 1) == round(BOX_SIZE * 100 / 240)  # aspect ratio kept
    ys = np.arange(28.0)
    centre = (float((field.sum(1) * ys).sum() / field.sum()), float((field.sum(0) * ys).sum() / field.sum()))
    assert centre == pytest.approx((14.0, 14.0), abs=0.5)


def test_dark_ink_on_grey_paper_gives_the_same_field_as_light_strokes(tmp_path: Path) -> None:
    strokes = np.zeros((90, 70), dtype=np.uint8)
    strokes[15:75, 30:40] = 255
    Image.fromarray(strokes).save(tmp_path / "light.png")
    paper = np.where(strokes > 0, 40, 200).astype(np.uint8)  # dark ink on light grey paper
    Image.fromarray(paper).save(tmp_path / "paper.png")
    assert np.allclose(_field(tmp_path / "light.png"), _field(tmp_path / "paper.png"), atol=0.02)


def test_colour_images_are_read_as_grayscale(tmp_path: Path) -> None:
    Image.new("RGB", (40, 30), (255, 0, 0)).save(tmp_path / "red.jpg")
    image = load_grayscale(tmp_path / "red.jpg")
    assert image.shape == (30, 40) and 0.25 < float(image.mean()) < 0.35  # ITU-R 601 luma of red: 0.299


def test_ink_on_a_transparent_background_counts_as_ink_on_paper(tmp_path: Path) -> None:
    strokes = np.zeros((90, 70), dtype=np.uint8)
    strokes[15:75, 30:40] = 255
    Image.fromarray(strokes).save(tmp_path / "light.png")
    rgba = np.zeros((90, 70, 4), dtype=np.uint8)  # transparent black everywhere...
    rgba[..., 3] = strokes  # ...except opaque black ink where the strokes are
    Image.fromarray(rgba, "RGBA").save(tmp_path / "transparent.png")
    assert np.allclose(_field(tmp_path / "light.png"), _field(tmp_path / "transparent.png"), atol=0.02)


def test_exif_rotation_is_applied(tmp_path: Path) -> None:
    strokes = np.zeros((90, 70), dtype=np.uint8)
    strokes[15:75, 30:40] = 255  # a vertical bar, stored lying down with "rotate 90" in its EXIF
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90 degrees clockwise to display
    Image.fromarray(np.rot90(strokes).copy()).save(tmp_path / "photo.jpg", exif=exif)
    field = _field(tmp_path / "photo.jpg")
    assert int(((field > 0.5).any(1)).sum()) == BOX_SIZE  # upright again: 20 rows tall


@pytest.mark.parametrize("kind", ["missing", "text", "truncated", "blank"])
def test_unusable_files_raise_one_line_image_errors(kind: str, tmp_path: Path) -> None:
    path = tmp_path / "image.png"
    if kind == "text":
        path.write_text("hello")
    elif kind == "truncated":
        Image.new("L", (64, 64), 30).save(path)
        path.write_bytes(path.read_bytes()[:60])
    elif kind == "blank":
        Image.new("L", (64, 64), 230).save(path)
    with pytest.raises(ImageError) as error:
        _field(path)
    message = str(error.value)
    assert message.startswith(f"{path}: ") and "\n" not in message


def test_a_16_bit_scan_of_7000x7000_is_read_scaled_by_its_range(tmp_path: Path) -> None:
    """16-bit pixels are scaled by their own range (docs/troubleshooting.md), at any allowed size."""
    (tmp_path / "scan16.png").write_bytes(bar(7000))
    (tmp_path / "scan8.png").write_bytes(bar(7000, 8))
    assert Image.open(tmp_path / "scan16.png").mode == "I;16"
    assert np.allclose(_field(tmp_path / "scan16.png"), _field(tmp_path / "scan8.png"), atol=0.02)


@pytest.mark.parametrize("mode", ["I", "F"])
def test_32_bit_and_float_images_are_scaled_by_their_range(mode: str, tmp_path: Path) -> None:
    seven = digit_image((300, 360))
    seven.save(tmp_path / "seven.png")
    seven.convert(mode).point(lambda value: value * 1000.5 - 3.0).save(tmp_path / "seven.tif")
    assert np.allclose(_field(tmp_path / "seven.png"), _field(tmp_path / "seven.tif"), atol=0.02)


@pytest.mark.parametrize(("width", "height", "says"), [
    (10_001, 100, "10001x100 pixels: a side longer than 10000 pixels; scale the image down"),
    (1, 50_000_000, "a side longer than 10000 pixels"),
    (8000, 7000, "8000x7000 pixels is more than 50,000,000; scale the image down"),
    (4000, 199, "4000x199 pixels: one side is more than 20 times the other; crop it to the digit"),
])
def test_sizes_over_the_limits_are_refused_from_the_header(width: int, height: int, says: str,
                                                           tmp_path: Path) -> None:
    path = tmp_path / "claims.png"
    path.write_bytes(claiming(width, height))  # 16x16 pixels of data: decoding it would fail otherwise
    with pytest.raises(ImageError) as error:
        load_grayscale(path)
    assert str(error.value).startswith(f"{path}: ") and says in str(error.value)


@pytest.mark.parametrize("name", ["PNG", "JPEG", "BMP", "GIF", "TIFF", "PPM"])
def test_every_format_the_docs_name_is_read(name: str, tmp_path: Path) -> None:
    path = tmp_path / f"seven.{name.lower()}"
    digit_image((60, 72)).save(path, name)
    digit_image((60, 72)).save(path.with_suffix(".reference.png"))
    assert np.allclose(_field(path), _field(path.with_suffix(".reference.png")), atol=0.1)


@pytest.mark.parametrize("name", ["DDS", "ICO", "ICNS", "WEBP", "JPEG2000", "TGA", "PCX"])
def test_other_formats_are_refused_before_a_decoder_sees_them(name: str, tmp_path: Path) -> None:
    path = tmp_path / "seven.png"  # named as one that is read
    digit_image((60, 72)).convert("RGB").save(path, name)
    with pytest.raises(ImageError) as error:
        load_grayscale(path)
    assert str(error.value) == f"{path}: not a {FORMAT_NAMES} image"


def test_a_dds_pillow_cannot_decode_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.png"
    path.write_bytes(dds_unimplemented())
    with pytest.raises(NotImplementedError):  # what Pillow does with it
        Image.open(path)
    with pytest.raises(ImageError) as error:
        load_grayscale(path)
    assert str(error.value) == f"{path}: not a {FORMAT_NAMES} image"


@pytest.mark.parametrize("suffix", ["png", "tif"])
def test_exif_rotation_is_applied_to_png_and_tiff_too(suffix: str, tmp_path: Path) -> None:
    strokes = np.zeros((3000, 2000), dtype=np.uint8)
    strokes[500:2500, 900:1100] = 255  # a tall bar, stored lying down, large enough to be shrunk first
    exif = Image.Exif()
    exif[0x0112] = 8  # orientation: rotate 90 degrees counter-clockwise to display
    Image.fromarray(np.rot90(strokes, -1).copy()).save(tmp_path / f"photo.{suffix}", exif=exif)
    field = _field(tmp_path / f"photo.{suffix}")
    assert int(((field > 0.5).any(1)).sum()) == BOX_SIZE  # upright again: 20 rows tall


def test_a_large_palette_image_keeps_its_thin_strokes(tmp_path: Path) -> None:
    """Palette and 1-bit images become grey before they are shrunk (Pillow would sample them)."""
    strokes = np.zeros((6000, 6000), dtype=np.uint8)
    strokes[1000:5000, 2998:3001] = 255  # a 3-pixel bar: an 8x shrink by sampling would miss it
    Image.fromarray(strokes).save(tmp_path / "grey.png")
    Image.fromarray(strokes).convert("P").save(tmp_path / "palette.gif")
    Image.fromarray(strokes).convert("1").save(tmp_path / "bits.png")
    grey = _field(tmp_path / "grey.png")
    assert np.allclose(grey, _field(tmp_path / "palette.gif"), atol=0.02)
    assert np.allclose(grey, _field(tmp_path / "bits.png"), atol=0.02)
