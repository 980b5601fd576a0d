"""``--recipe mlp-best``'s network (``mlp-deskew``) carries its deskewing inside the model: the checkpoint,
every exported file (TorchScript, ONNX, ExecuTorch where installed) and the digit pad's classify path give the
same answers on real MNIST test digits saved as PNG files.

The model is trained briefly (one epoch on 15,000 images: the answers must agree, not be good). The test
first shows that the deskewing changes the logits far more than the tolerance, so a file that left it out
could not pass.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch

from ignite_mnist.data.preprocess import preprocess_image
from ignite_mnist.inference.demo import classify_drawing
from ignite_mnist.inference.export import INT8_MAX_ACCURACY_DROP, TOLERANCE, export_model
from ignite_mnist.inference.exported import load_exported
from ignite_mnist.inference.trained import Classifier, load_model, predict
from ignite_mnist.models import DeskewMLP
from tests.inference.conftest import train_checkpoint
from tests.inference.test_export import NEEDS_ONNX, _digit_files

pytestmark = pytest.mark.integration  # trained on real MNIST (skipped without it)

NEEDS_EXECUTORCH = pytest.mark.skipif(importlib.util.find_spec("executorch") is None,
                                      reason='the edge extra is not installed (pip install -e ".[edge]")')
FORMATS = ["torchscript", pytest.param("onnx", marks=NEEDS_ONNX), pytest.param("executorch", marks=NEEDS_EXECUTORCH)]
SUFFIXES = {"torchscript": ".torchscript.pt", "onnx": ".onnx", "executorch": ".pte"}
DIGITS = 12
CHECKED_SAMPLES = 1000  # the export's own check against the eager model, on the first test images


@pytest.fixture(scope="module")
def deskew_checkpoint(mnist_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return train_checkpoint("mlp-deskew", mnist_root, tmp_path_factory.mktemp("mlp-deskew"))


@pytest.fixture(scope="module")
def digit_pngs(mnist_root: Path, tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    return _digit_files(mnist_root, tmp_path_factory.mktemp("digits"), DIGITS)


def _pad_answers(classifier: Classifier, pngs: list[Path]) -> torch.Tensor:
    """Each PNG posted to the pad's classify path: its probabilities, one row per file."""
    answers = [classify_drawing(classifier, png.read_bytes()) for png in pngs]
    assert all("error" not in answer for answer in answers), answers
    return torch.tensor([answer["probabilities"] for answer in answers])


def test_the_checkpoint_is_the_deskewing_mlp_and_the_deskewing_matters(
    deskew_checkpoint: Path, digit_pngs: list[Path]
) -> None:
    loaded = load_model(deskew_checkpoint)
    assert isinstance(loaded.model, DeskewMLP)
    inputs = torch.from_numpy(np.stack([preprocess_image(png, mean=loaded.spec.mean, std=loaded.spec.std)
                                        for png in digit_pngs]))
    with torch.inference_mode():
        whole, mlp_alone = loaded.model(inputs), loaded.model.mlp(inputs)
    assert (whole - mlp_alone).abs().max() > 100 * TOLERANCE  # a file without the deskewing would be caught


@pytest.mark.parametrize("format", FORMATS)
def test_checkpoint_exported_file_and_pad_give_the_same_answers(
    format: str, deskew_checkpoint: Path, digit_pngs: list[Path], tmp_path: Path
) -> None:
    loaded = load_model(deskew_checkpoint)
    result = export_model(loaded, tmp_path / f"model{SUFFIXES[format]}", format, samples=CHECKED_SAMPLES)
    assert result.max_abs_difference <= TOLERANCE and result.agreement == 1.0
    exported = load_exported(result.path)

    from_checkpoint, from_file = predict(loaded, digit_pngs), predict(exported, digit_pngs)
    assert [p.error for p in from_checkpoint + from_file] == [None] * (2 * DIGITS)
    assert [p.index for p in from_file] == [p.index for p in from_checkpoint]
    assert [p.probability for p in from_file] == pytest.approx([p.probability for p in from_checkpoint], abs=1e-5)

    pad_checkpoint, pad_file = _pad_answers(loaded, digit_pngs), _pad_answers(exported, digit_pngs)
    assert torch.allclose(pad_file, pad_checkpoint, rtol=0, atol=1e-5)
    assert pad_file.argmax(1).tolist() == pad_checkpoint.argmax(1).tolist() == [p.index for p in from_checkpoint]
    if format == "onnx":  # the deskewing is in the graph itself, as a GridSample node
        import onnx

        assert "GridSample" in {node.op_type for node in onnx.load(str(result.path)).graph.node}


@NEEDS_ONNX
def test_the_deskewing_mlp_quantizes_to_int8_onnx(deskew_checkpoint: Path, tmp_path: Path) -> None:
    # ONNX Runtime's quantization tooling infers every node's shape first: the deskewing must let it
    result = export_model(load_model(deskew_checkpoint), tmp_path / "model.int8.onnx", "onnx", quantize="int8",
                          samples=CHECKED_SAMPLES)
    assert result.path.is_file() and result.accuracy >= result.eager_accuracy - INT8_MAX_ACCURACY_DROP
