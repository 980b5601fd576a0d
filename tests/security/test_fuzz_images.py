"""Hostile image files: in every call of ``predict``, each bad file is one line and the good files beside it are
still answered; nothing raises, hangs or spends more than the bound of docs/security.md.

A small seven is written in every format Pillow can write here (PNG, JPEG, TIFF, GIF, BMP, PNM, but also ICO,
ICNS, DDS, WebP, JPEG 2000, ...), each file named ``.png`` whatever it is, and mutated deterministically (seeded
byte changes, a header field made huge, cut short, bytes inserted and removed); hand-made files reproduce what
broke before: a DDS Pillow cannot decode, an ICO and an ICNS hiding a 13,000 x 13,000 PNG behind a small
directory entry, PNG headers claiming huge or extreme sizes, a GIF frame larger than its screen, 16-bit and
float images, pipes, devices, folders and a sparse 65 MiB file.
"""

from __future__ import annotations

import io
import os
import struct
import time
import warnings
import zlib
from pathlib import Path

import pytest
from PIL import Image

from ignite_mnist.data import MNIST, DatasetInfo
from ignite_mnist.data.preprocess import FORMAT_NAMES, IMAGE_FORMATS
from ignite_mnist.inference.trained import LoadedModel, Prediction, predict
from ignite_mnist.limits import MAX_IMAGE_BYTES
from ignite_mnist.models import build_model
from ignite_mnist.settings.config import TrainConfig
from tests.security.conftest import count_cases
from tests.security.images import (
    bar,
    claiming,
    dds_unimplemented,
    digit_image,
    icns_bomb,
    ico_bomb,
    mutations,
    png,
    small_digits,
)

MUTANTS = 30  # per format
#: The most one image may raise this process's peak memory (docs/security.md states about 0.3 GB).
MEMORY_BOUND_MIB = 512
REFUSED_FORMAT = f"not a {FORMAT_NAMES} image"


@pytest.fixture(scope="module")
def model() -> LoadedModel:
    """An untrained MLP: what it answers does not matter here, only that it answers."""
    return LoadedModel(build_model("mlp").eval(), TrainConfig(), DatasetInfo.of(MNIST), Path("untrained.pt"))


def peak_mib() -> int:
    """This process's peak resident memory (``VmHWM``; ``ru_maxrss`` would count a parent's, inherited at exec)."""
    return int(Path("/proc/self/status").read_text().split("VmHWM:")[1].split()[0]) // 1024


def checked_predict(model: LoadedModel, paths: list[Path], good: Path) -> dict[str, Prediction]:
    """``predict`` on ``paths`` and ``good`` in one call, which warns nothing; the good file answered, every other
    answered or refused with one line naming it."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        predictions = predict(model, [*paths, good])
    assert [str(warning.message) for warning in caught] == []
    by_file = {p.file: p for p in predictions}
    assert by_file[str(good)].error is None and by_file[str(good)].label is not None
    for file, prediction in by_file.items():
        if prediction.error is not None:
            assert prediction.error.startswith(f"{file}: ") and "\n" not in prediction.error, prediction.error
            assert "Traceback" not in prediction.error
    return by_file


def test_mutated_images_in_every_format_pillow_writes(model: LoadedModel, tmp_path: Path, record_property) -> None:
    good = tmp_path / "good.png"
    digit_image().save(good)
    formats = small_digits()
    assert {"PNG", "JPEG", "TIFF", "GIF", "BMP", "PPM", "ICO", "ICNS", "DDS", "WEBP"} <= formats.keys()
    before, cases = peak_mib(), 0
    for name, data in formats.items():
        valid = tmp_path / f"{name}-valid.png"  # named .png, whatever it is
        valid.write_bytes(data)
        files = [valid]
        for index, mutant in enumerate(mutations(data, seed=zlib.crc32(name.encode()), count=MUTANTS)):
            files.append(tmp_path / f"{name}-{index}.png")
            files[-1].write_bytes(mutant)
        started = time.monotonic()
        by_file = checked_predict(model, files, good)
        assert time.monotonic() - started < 60, name  # a hang, not a timing: each file is milliseconds
        if name in (*IMAGE_FORMATS, "MPO"):  # MPO: Pillow writes a JPEG
            assert by_file[str(valid)].error is None, by_file[str(valid)].error
        else:
            assert by_file[str(valid)].error == f"{valid}: {REFUSED_FORMAT}"
        cases += len(files)
    assert peak_mib() - before < MEMORY_BOUND_MIB
    count_cases(record_property, "mutated images", cases)


def gif_frame_larger_than_its_screen() -> bytes:
    buffer = io.BytesIO()
    Image.new("P", (16, 16)).save(buffer, "GIF")
    data = bytearray(buffer.getvalue())
    descriptor = data.index(b"\x2c", 13)  # after the screen descriptor
    struct.pack_into("<HH", data, descriptor + 5, 9000, 9000)
    return bytes(data)


def two_page_tiff() -> bytes:
    """A TIFF whose first page is the seven and whose second is 3000 x 3000: only the first is read."""
    buffer = io.BytesIO()
    digit_image().save(buffer, "TIFF", save_all=True, append_images=[Image.new("L", (3000, 3000))])
    return buffer.getvalue()


def float_tiff() -> bytes:
    buffer = io.BytesIO()
    digit_image().convert("F").point(lambda value: value * 1000.5 - 3.0).save(buffer, "TIFF")
    return buffer.getvalue()


#: name -> (bytes, what its line must say; None: it is answered).
CRAFTED = {
    "dds.png": (dds_unimplemented, REFUSED_FORMAT),
    "ico-bomb.png": (lambda: ico_bomb(8000), REFUSED_FORMAT),  # (tests/inference/test_predict.py: 13,000)
    "icns-bomb.png": (lambda: icns_bomb(8000), REFUSED_FORMAT),
    "huge-header.png": (lambda: claiming(100_000, 100_000), "more than 50,000,000 pixels"),  # Pillow's check
    "strip-1x50000000.png": (lambda: claiming(1, 50_000_000), "a side longer than 10000 pixels"),
    "9000x9000-header.png": (lambda: claiming(9000, 9000, 6), "is more than 50,000,000"),
    "aspect-21.png": (lambda: png(21 * 30, 30), "more than 20 times the other"),
    "gif-frame-9000x9000.gif": (gif_frame_larger_than_its_screen, "is more than 50,000,000"),
    "rgba-50-megapixels.png": (lambda: png(10_000, 5_000, 8, 6), "no digit found"),  # the most an image may cost
    "sixteen-bit.png": (lambda: bar(480), None),
    "float.tif": (float_tiff, None),
    "two-pages.tif": (two_page_tiff, None),
    "empty.png": (lambda: b"", REFUSED_FORMAT),
    "truncated.png": (lambda: png(64, 64, row=lambda y: bytes(range(64)))[:90], "cannot read image"),
}


def test_crafted_images_and_files_that_are_no_images(model: LoadedModel, tmp_path: Path, record_property) -> None:
    expected = {}
    for name, (make, says) in CRAFTED.items():
        (tmp_path / name).write_bytes(make())
        expected[tmp_path / name] = says
    os.mkfifo(tmp_path / "fifo.png")
    (tmp_path / "zero.png").symlink_to("/dev/zero")
    (tmp_path / "folder.png").mkdir()
    with open(tmp_path / "sparse.png", "wb") as handle:  # 65 MiB claimed, nothing written
        handle.truncate(MAX_IMAGE_BYTES + (1 << 20))
    for name, kind in (("fifo.png", "a pipe (FIFO)"), ("zero.png", "a device"), ("folder.png", "a folder")):
        expected[tmp_path / name] = f"refused: {kind}, not a regular file"
    expected[tmp_path / "sparse.png"] = "refused: 65 MiB, more than the 64 MiB such a file may have"
    expected[tmp_path / "missing.png"] = "no such file"
    good = tmp_path / "good.png"
    digit_image().save(good)
    before = peak_mib()
    by_file = checked_predict(model, list(expected), good)
    assert peak_mib() - before < MEMORY_BOUND_MIB
    for path, says in expected.items():
        if says is None:
            assert by_file[str(path)].error is None, by_file[str(path)].error
        else:
            assert by_file[str(path)].error is not None and says in by_file[str(path)].error, by_file[str(path)]
    count_cases(record_property, "crafted images", len(expected))
