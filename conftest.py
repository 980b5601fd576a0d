"""What the docstring examples in ``ignite_mnist/`` may use (pytest runs them: ``--doctest-modules``).

``data_dir``: a small generated dataset in the MNIST layout (1,200 training and
300 test images), so examples that train, evaluate or predict run in seconds;
``runs``: an empty folder for their run directories; ``digit_png``: a photo-like
image of a digit (dark ink on white paper); ``folder``: a tiny image-folder dataset
(``train/`` and ``test/``, classes ``0`` and ``1``, two images each).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

# One intra-op thread in this process and in every subprocess a test starts: the tests time nothing, and
# two threads per process collapse on a shared 2-core machine (pytest-xdist runs two processes already).
os.environ.setdefault("OMP_NUM_THREADS", "1")

from tests.conftest import make_idx_dataset  # after OMP_NUM_THREADS: it imports torch

#: The fuzz tests' case counts, printed at the end of every run (docs/security.md).
pytest_plugins = ["tests.security.fuzz_report"]


def _digit_png(folder: Path) -> Path:
    from PIL import Image, ImageDraw

    image = Image.new("L", (120, 160), color=255)
    ImageDraw.Draw(image).line([(30, 20), (90, 20), (50, 140)], fill=0, width=12)  # a seven
    path = folder / "seven.png"
    image.save(path)
    return path


def _image_folder(root: Path) -> Path:
    from PIL import Image, ImageDraw

    for split in ("train", "test"):
        for label, stroke in (("0", [(20, 20), (60, 20), (60, 80), (20, 80), (20, 20)]), ("1", [(40, 10), (40, 90)])):
            (root / split / label).mkdir(parents=True)
            for index in range(2):
                image = Image.new("L", (80, 100), color=255)
                ImageDraw.Draw(image).line(stroke, fill=0, width=8 + 2 * index)
                image.save(root / split / label / f"{index}.png")
    return root


@pytest.fixture(scope="session", autouse=True)
def docstring_example_names(doctest_namespace: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> None:
    folder = tmp_path_factory.mktemp("docstring-examples")
    doctest_namespace["data_dir"] = str(make_idx_dataset(folder / "data"))
    doctest_namespace["runs"] = str(folder / "runs")
    doctest_namespace["digit_png"] = str(_digit_png(folder))
    doctest_namespace["folder"] = str(_image_folder(folder / "digits"))
