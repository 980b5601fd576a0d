"""``predict`` on real MNIST test digits saved as image files, plain and disguised."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from ignite_mnist.cli import main
from ignite_mnist.data import load_split_tensors, normalise
from ignite_mnist.data.preprocess import FORMAT_NAMES
from ignite_mnist.inference.trained import load_model, predict, predict_tensors
from tests.conftest import run_cli
from tests.security.images import dds_unimplemented, digit_image, ico_bomb

DIGITS = 40  # the first test digits; those the model is sure of (p > 0.95) on the dataset tensor are used


def _plain(digit: np.ndarray) -> Image.Image:
    return Image.fromarray(digit)


def _inverted(digit: np.ndarray) -> Image.Image:
    return Image.fromarray(255 - digit)  # dark ink on white paper


def _resized(digit: np.ndarray) -> Image.Image:
    return Image.fromarray(digit).resize((150, 150), Image.BICUBIC)


def _off_centre(digit: np.ndarray) -> Image.Image:
    canvas = np.zeros((240, 320), dtype=np.uint8)  # a landscape photo, digit in the top right corner
    canvas[12:96, 220:304] = np.asarray(Image.fromarray(digit).resize((84, 84), Image.BICUBIC))
    return Image.fromarray(canvas)


def _off_centre_ink_on_paper_jpeg(digit: np.ndarray) -> Image.Image:
    return Image.fromarray(255 - np.asarray(_off_centre(digit))).convert("RGB")


VARIANTS: dict[str, tuple[Callable[[np.ndarray], Image.Image], str]] = {
    "plain": (_plain, "png"),
    "inverted": (_inverted, "png"),
    "resized": (_resized, "png"),
    "off-centre": (_off_centre, "png"),
    "off-centre ink on paper, RGB JPEG": (_off_centre_ink_on_paper_jpeg, "jpg"),
}


@pytest.fixture(scope="module")
def sure_digits(mnist_checkpoint: Path) -> tuple[torch.Tensor, torch.Tensor]:
    """Test digits the model classifies correctly with p > 0.95 straight from the dataset tensor."""
    loaded = load_model(mnist_checkpoint)
    images, labels = load_split_tensors(loaded.config.data_dir, "mnist", train=False)
    images, labels = images[:DIGITS], labels[:DIGITS]
    probabilities = predict_tensors(loaded.model, normalise(images, loaded.spec.mean, loaded.spec.std))
    sure = (probabilities.argmax(1) == labels) & (probabilities.max(1).values > 0.95)
    assert int(sure.sum()) >= DIGITS * 0.7
    return images[sure], labels[sure]


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_predict_returns_the_labels_of_real_digits_saved_as_images(
    variant: str, mnist_checkpoint: Path, sure_digits: tuple[torch.Tensor, torch.Tensor], tmp_path: Path
) -> None:
    make, suffix = VARIANTS[variant]
    images, labels = sure_digits
    paths = []
    for index, image in enumerate(images.numpy()):
        paths.append(tmp_path / f"digit{index}.{suffix}")
        make(image).save(paths[-1])
    predictions = predict(load_model(mnist_checkpoint), paths)
    assert [p.error for p in predictions] == [None] * len(paths)
    assert [p.index for p in predictions] == labels.tolist()
    assert [p.label for p in predictions] == [str(d) for d in labels.tolist()]
    assert all(0.5 < p.probability <= 1 for p in predictions)


def test_predict_cli_reports_bad_files_on_one_line_each_and_goes_on(
    mnist_checkpoint: Path, sure_digits: tuple[torch.Tensor, torch.Tensor], tmp_path: Path
) -> None:
    images, labels = sure_digits
    good = tmp_path / "good.png"
    _inverted(images[0].numpy()).save(good)
    text = tmp_path / "notes.png"
    text.write_text("not an image at all\n")
    blank = tmp_path / "blank.png"
    Image.new("L", (64, 64), 255).save(blank)
    missing = tmp_path / "missing.jpg"

    result = run_cli("predict", str(mnist_checkpoint), str(text), str(good), str(missing), str(blank), "--json")
    assert result.returncode == 1
    rows = json.loads(result.stdout)
    assert [row["file"] for row in rows] == [str(text), str(good), str(missing), str(blank)]
    assert rows[1]["prediction"] == int(labels[0]) and rows[1]["probability"] > 0.5
    errors = result.stderr.strip().splitlines()
    assert len(errors) == 3 and "Traceback" not in result.stderr
    assert errors[0] == f"ignite-mnist: error: {text}: not a {FORMAT_NAMES} image"
    assert errors[1] == f"ignite-mnist: error: {missing}: no such file"
    assert errors[2] == f"ignite-mnist: error: {blank}: no digit found (the image is blank)"
    assert rows[0] == {"file": str(text), "error": errors[0].removeprefix("ignite-mnist: error: ")}


def test_predict_cli_plain_output(
    mnist_checkpoint: Path, sure_digits: tuple[torch.Tensor, torch.Tensor], tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    images, labels = sure_digits
    paths = [tmp_path / "a.png", tmp_path / "b.png"]
    for path, image in zip(paths, images[:2].numpy(), strict=False):
        _plain(image).save(path)
    assert main(["predict", str(mnist_checkpoint), *map(str, paths)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(": ")[0] for line in lines] == [str(p) for p in paths]
    assert [line.split(": ")[1].split(" ")[0] for line in lines] == [str(int(d)) for d in labels[:2]]


def test_a_dds_named_png_beside_a_good_png_is_one_line_and_the_good_one_is_answered(idx_run: Path,
                                                                                    tmp_path: Path) -> None:
    """``ignite-mnist predict RUN bad.png good.png``: Pillow raised NotImplementedError on the DDS, and the
    whole call ended in a traceback."""
    bad, good = tmp_path / "bad.png", tmp_path / "good.png"
    bad.write_bytes(dds_unimplemented())
    digit_image().save(good)
    result = run_cli("predict", str(idx_run), str(bad), str(good))
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr == f"ignite-mnist: error: {bad}: not a {FORMAT_NAMES} image\n"
    assert result.stdout.startswith(f"{good}: ") and result.stdout.count("\n") == 1


#: ``ignite-mnist ARGS`` in a process that writes its own peak memory (``VmHWM``, KiB) to the file ``argv[1]``.
#: ``ru_maxrss`` is not used: Linux carries the parent's peak (this pytest process's) across exec.
PEAK_OF_PREDICT = """
import sys
from pathlib import Path
from ignite_mnist.cli import main
code = main(sys.argv[2:])
Path(sys.argv[1]).write_text(Path("/proc/self/status").read_text().split("VmHWM:")[1].split()[0])
sys.exit(code)
"""
#: How much more an ICO bomb may cost than a plain PNG (its 13,000 x 13,000 RGBA image would take 645 MiB).
BOMB_MARGIN_MIB = 32


def test_an_ico_bomb_costs_no_more_memory_than_a_plain_png(idx_run: Path, tmp_path: Path) -> None:
    """An ICO whose directory says 16x16 but which holds a 13,000 x 13,000 PNG was decoded before the size check."""
    plain, bomb = tmp_path / "plain.png", tmp_path / "bomb.png"
    digit_image().save(plain)
    bomb.write_bytes(ico_bomb(13_000))
    peaks = {}
    for image in (plain, bomb):
        result = subprocess.run([sys.executable, "-c", PEAK_OF_PREDICT, str(tmp_path / "peak"), "predict",
                                 str(idx_run), str(image)], capture_output=True, text=True, timeout=300)
        assert "Traceback" not in result.stderr and result.returncode == (0 if image == plain else 1), result.stderr
        peaks[image.name] = int((tmp_path / "peak").read_text()) / 1024
    assert peaks["bomb.png"] < peaks["plain.png"] + BOMB_MARGIN_MIB, peaks
