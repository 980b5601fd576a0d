"""Image preprocessing: MNIST digits come back as they were; crops, centring, inversion, bad files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ignite_mnist.data import load_split_arrays
from ignite_mnist.data.preprocess import BOX_SIZE, ImageError, centre_digit, load_grayscale, preprocess_image


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
