"""``export``: the written TorchScript / ONNX file gives the eager model's logits on real test digits."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest
import torch

from ignite_mnist.cli import main
from ignite_mnist.data import load_split_tensors, normalise
from ignite_mnist.export import CHECK_SAMPLES, TOLERANCE, export_model, run_exported
from ignite_mnist.inference import load_model

ONNX_INSTALLED = all(importlib.util.find_spec(name) for name in ("onnx", "onnxscript", "onnxruntime"))
FORMATS = ["torchscript", pytest.param("onnx", marks=pytest.mark.skipif(
    not ONNX_INSTALLED, reason="the onnx extra is not installed (pip install -e '.[onnx]')"
))]


@pytest.mark.parametrize("format", FORMATS)
def test_exported_model_reproduces_the_eager_logits(format: str, mnist_checkpoint: Path, tmp_path: Path) -> None:
    loaded = load_model(mnist_checkpoint)
    result = export_model(loaded, tmp_path / f"model.{format}", format)
    assert result.path.is_file() and result.samples == CHECK_SAMPLES
    assert 0 <= result.max_abs_difference <= TOLERANCE

    # independently of the built-in check: other test digits, another batch size
    images, _ = load_split_tensors(loaded.config.data_dir, "mnist", train=False)
    inputs = normalise(images[5000:5123], loaded.spec.mean, loaded.spec.std)
    with torch.inference_mode():
        eager = loaded.model(inputs)
    exported = run_exported(result.path, format, inputs)
    assert exported.shape == (123, 10)
    assert torch.allclose(exported, eager, rtol=0, atol=TOLERANCE)
    assert torch.equal(exported.argmax(1), eager.argmax(1))


def test_export_cli_writes_next_to_the_checkpoint_and_states_the_tolerance(
    mnist_checkpoint: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["export", str(mnist_checkpoint)]) == 0
    written = mnist_checkpoint.with_name("cnn.torchscript.pt")
    assert written.is_file()
    out = capsys.readouterr().out
    assert out.startswith(f"torchscript model written to {written}; on {CHECK_SAMPLES} test images")
    assert f"(tolerance {TOLERANCE:g})" in out


def test_onnx_without_its_packages_is_a_one_line_error(
    mnist_checkpoint: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # onnx cannot be uninstalled for one test; a None entry in sys.modules makes its import fail the same way
    monkeypatch.setitem(sys.modules, "onnx", None)
    assert main(["export", str(mnist_checkpoint), "--format", "onnx", "--output", str(tmp_path / "m.onnx")]) == 1
    assert capsys.readouterr().err == (
        'ignite-mnist: error: ONNX export needs the onnx extra: pip install "ignite-mnist[onnx]" '
        "(onnx, onnxscript, onnxruntime)\n"
    )
    assert not (tmp_path / "m.onnx").exists()


def test_unknown_format_is_a_usage_error(mnist_checkpoint: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["export", str(mnist_checkpoint), "--format", "tflite"])
    assert exit_info.value.code == 2
    assert "invalid choice: 'tflite'" in capsys.readouterr().err
