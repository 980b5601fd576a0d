"""``export --format executorch``: float and int8 ``.pte`` files of the MLP and the CNN, on real MNIST test digits.

Both models are the session's briefly trained checkpoints (one epoch on 15,000
images). The four files are exported once for the module (the MLP float one through
the command line). The export runs each file with ExecuTorch's runtime on all
10,000 test images and writes the numbers to the sidecar: the issue's claims are
asserted on those, and spot-checked here independently on 300 test images (more than
the 256 a program takes at once) and on a batch of one.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import json
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

from ignite_mnist.cli import main
from ignite_mnist.data import MNIST, load_split_tensors, normalise
from ignite_mnist.inference.export import TOLERANCE, export_model, run_exported, sidecar_path
from ignite_mnist.inference.exported import load_exported
from ignite_mnist.inference.trained import load_model

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(importlib.util.find_spec("executorch") is None,
                       reason='the edge extra is not installed (pip install -e ".[edge]")'),
]

MODELS = ("mlp", "cnn")
SPOT_CHECK = 300


@dataclass
class Exported:
    checkpoint: Path
    float_file: Path
    int8_file: Path

    def check(self, quantized: bool) -> dict[str, Any]:
        """The export's own check on the whole test set, from the sidecar."""
        return json.loads(sidecar_path(self.int8_file if quantized else self.float_file).read_text())["check"]


@contextlib.contextmanager
def output_captured() -> Iterator[dict[str, str]]:
    """stdout, and stderr: ``sys.stderr`` and file descriptor 2 itself (where ExecuTorch's C++ runtime writes)."""
    captured: dict[str, str] = {}
    with tempfile.TemporaryFile("w+") as err, contextlib.redirect_stdout(io.StringIO()) as out, \
            contextlib.redirect_stderr(io.StringIO()) as python_err:
        saved = os.dup(2)
        os.dup2(err.fileno(), 2)
        try:
            yield captured
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            err.seek(0)
            captured.update(stdout=out.getvalue(), stderr=python_err.getvalue() + err.read())


@pytest.fixture(scope="module")
def cli_output(mnist_mlp_checkpoint: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """``ignite-mnist export MLP --format executorch``: the first program this process loads (the runtime's
    ``cpuinfo`` notes come then)."""
    output = tmp_path_factory.mktemp("pte") / "mlp.pte"
    with output_captured() as captured:
        code = main(["export", str(mnist_mlp_checkpoint), "--format", "executorch", "--output", str(output)])
    return captured | {"code": str(code), "file": str(output)}


@pytest.fixture(scope="module")
def pte_files(cli_output: dict[str, str], mnist_checkpoint: Path, mnist_mlp_checkpoint: Path) -> dict[str, Exported]:
    folder = Path(cli_output["file"]).parent
    files = {"mlp": Exported(mnist_mlp_checkpoint, Path(cli_output["file"]), folder / "mlp.int8.pte"),
             "cnn": Exported(mnist_checkpoint, folder / "cnn.pte", folder / "cnn.int8.pte")}
    export_model(load_model(mnist_checkpoint), files["cnn"].float_file, "executorch")
    for name in MODELS:
        export_model(load_model(files[name].checkpoint), files[name].int8_file, "executorch", quantize="int8")
    return files


@pytest.fixture(scope="module")
def spot_check_images(mnist_root: Path) -> torch.Tensor:
    images, _ = load_split_tensors(mnist_root, "mnist", train=False)
    return normalise(images[-SPOT_CHECK:], MNIST.mean, MNIST.std)


def _eager(checkpoint: Path, inputs: torch.Tensor) -> torch.Tensor:
    with torch.inference_mode():
        return load_model(checkpoint).model(inputs)


def test_the_command_line_prints_one_line_and_nothing_on_stderr(cli_output: dict[str, str]) -> None:
    assert cli_output["code"] == "0" and cli_output["stderr"] == ""
    assert cli_output["stdout"].count("\n") == 1
    assert cli_output["stdout"].startswith(f"executorch model written to {cli_output['file']} (metadata also in "
                                           f"{cli_output['file']}.json); on 10000 test images its logits differ")


@pytest.mark.parametrize("name", MODELS)
def test_float_pte_agrees_with_eager_on_the_whole_test_set(
    name: str, pte_files: dict[str, Exported], spot_check_images: torch.Tensor
) -> None:
    check = pte_files[name].check(quantized=False)
    assert check["images"] == 10_000 and check["agreement_with_eager"] >= 0.999
    assert check["max_abs_logit_difference"] <= TOLERANCE
    # independently: other batch sizes than the check's (300 is run as 256 + 44, then a batch of one)
    eager = _eager(pte_files[name].checkpoint, spot_check_images)
    exported = run_exported(pte_files[name].float_file, "executorch", spot_check_images)
    assert exported.shape == (SPOT_CHECK, 10) and torch.allclose(exported, eager, rtol=0, atol=TOLERANCE)
    one = run_exported(pte_files[name].float_file, "executorch", spot_check_images[:1])
    assert torch.allclose(one, eager[:1], rtol=0, atol=TOLERANCE)


@pytest.mark.parametrize("name", MODELS)
def test_int8_pte_is_within_0_3_points_of_the_float_file_at_under_30_percent_of_its_size(
    name: str, pte_files: dict[str, Exported], spot_check_images: torch.Tensor
) -> None:
    files = pte_files[name]
    float_check, int8_check = files.check(quantized=False), files.check(quantized=True)
    assert int8_check["images"] == 10_000
    assert abs(int8_check["accuracy"] - float_check["accuracy"]) <= 0.003, (int8_check, float_check)
    assert files.int8_file.stat().st_size <= 0.30 * files.float_file.stat().st_size  # measured: 26-27 %
    eager = _eager(files.checkpoint, spot_check_images)
    exported = run_exported(files.int8_file, "executorch", spot_check_images)
    assert float((exported.argmax(1) == eager.argmax(1)).double().mean()) >= 0.99


def test_metadata_inside_the_pte_equals_the_sidecar(pte_files: dict[str, Exported]) -> None:
    for file, quantization in ((pte_files["cnn"].float_file, None), (pte_files["cnn"].int8_file, "int8")):
        inside = load_exported(file).metadata  # the program's constant method
        sidecar = json.loads(sidecar_path(file).read_text())
        assert sidecar == inside | {"file": file.name, "bytes": file.stat().st_size, "check": sidecar["check"]}
        assert inside["format"] == "executorch" and inside["quantization"] == quantization
        assert inside["model"] == "cnn" and inside["input"]["max_batch"] == 256
        assert inside["dataset"] == {"name": "mnist", "classes": [str(d) for d in range(10)],
                                     "mean": MNIST.mean, "std": MNIST.std}
        assert 0.95 < inside["test_accuracy"] <= 1 and inside["test_images"] == 10_000


def test_predict_on_a_pte_gives_the_checkpoints_digits(
    pte_files: dict[str, Exported], mnist_root: Path, tmp_path: Path
) -> None:
    images, _ = load_split_tensors(mnist_root, "mnist", train=False)
    paths = []
    for index, digit in enumerate(images[:20].numpy()):
        paths.append(str(tmp_path / f"digit{index}.png"))
        Image.fromarray(255 - np.asarray(digit)).save(paths[-1])  # ink on paper: predict preprocesses it

    def digits(model_file: Path) -> list[int]:
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            assert main(["predict", str(model_file), *paths, "--json"]) == 0
        return [row["prediction"] for row in json.loads(out.getvalue())]

    files = pte_files["cnn"]
    assert digits(files.float_file) == digits(files.checkpoint)
    assert sum(a != b for a, b in zip(digits(files.int8_file), digits(files.checkpoint), strict=False)) <= 1
