"""``export``: the written TorchScript / ONNX file gives the eager model's logits on real test digits, describes
itself, and ``predict`` can use it alone. (ExecuTorch: ``test_executorch.py``.)"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import json
import sys
from pathlib import Path

import pytest
import torch
from PIL import Image

from ignite_mnist.cli import main
from ignite_mnist.data import load_split_tensors, normalise
from ignite_mnist.inference.export import (
    INT8_MAX_ACCURACY_DROP,
    METADATA_NAME,
    TOLERANCE,
    ExportError,
    ExportResult,
    export_model,
    run_exported,
    sidecar_path,
)
from ignite_mnist.inference.exported import load_exported
from ignite_mnist.inference.trained import load_model, predict

ONNX_INSTALLED = all(importlib.util.find_spec(name) for name in ("onnx", "onnxscript", "onnxruntime"))
NEEDS_ONNX = pytest.mark.skipif(not ONNX_INSTALLED, reason="the onnx extra is not installed (pip install -e '.[onnx]')")
FORMATS = ["torchscript", pytest.param("onnx", marks=NEEDS_ONNX)]
TEST_IMAGES = 10_000

pytestmark = pytest.mark.integration  # the models are trained on real MNIST (skipped without it)


def _digit_files(root: Path, folder: Path, count: int = 20) -> list[Path]:
    """The first ``count`` real test digits as PNG files, as ink on paper."""
    images, _ = load_split_tensors(root, "mnist", train=False)
    paths = [folder / f"digit{index}.png" for index in range(count)]
    for path, digit in zip(paths, images[:count], strict=False):
        Image.fromarray(255 - digit.numpy()).save(path)
    return paths


@pytest.fixture(scope="module")
def float_exports(mnist_checkpoint: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, ExportResult]:
    """The CNN as TorchScript (named ``model.pt``, as a checkpoint could be) and ONNX, each checked on the test set."""
    folder = tmp_path_factory.mktemp("exports")
    loaded = load_model(mnist_checkpoint)
    exports = {"torchscript": export_model(loaded, folder / "model.pt", "torchscript")}
    if ONNX_INSTALLED:
        exports["onnx"] = export_model(loaded, folder / "model.onnx", "onnx")
    return exports


@pytest.mark.parametrize("format", FORMATS)
def test_exported_model_reproduces_the_eager_logits_and_describes_itself(
    format: str, float_exports: dict[str, ExportResult], mnist_checkpoint: Path, tmp_path: Path
) -> None:
    loaded, result = load_model(mnist_checkpoint), float_exports[format]
    assert result.path.is_file() and result.samples == TEST_IMAGES
    assert 0 <= result.max_abs_difference <= TOLERANCE and result.agreement == 1.0
    assert result.accuracy == result.eager_accuracy > 0.95

    # independently of the built-in check: another batch size
    images, _ = load_split_tensors(loaded.config.data_dir, "mnist", train=False)
    inputs = normalise(images[5000:5123], loaded.spec.mean, loaded.spec.std)
    with torch.inference_mode():
        eager = loaded.model(inputs)
    exported = run_exported(result.path, format, inputs)
    assert exported.shape == (123, 10)
    assert torch.allclose(exported, eager, rtol=0, atol=TOLERANCE)
    assert torch.equal(exported.argmax(1), eager.argmax(1))

    # the metadata inside the file (read back with the format's runtime) is the sidecar's
    described = load_exported(result.path)
    sidecar = json.loads(sidecar_path(result.path).read_text())
    assert sidecar == described.metadata | {"file": result.path.name, "bytes": result.path.stat().st_size,
                                            "check": sidecar["check"]}
    assert described.format == format and described.spec == loaded.spec
    assert described.metadata["model"] == "cnn" and described.metadata["test_accuracy"] == result.eager_accuracy
    assert described.metadata["input"] == described.metadata["input"] | {"shape": ["batch", 1, 28, 28],
                                                                         "dtype": "float32", "name": "images"}
    assert sidecar["check"]["images"] == TEST_IMAGES and sidecar["check"]["accuracy"] == result.accuracy
    if format == "onnx":  # where other ONNX tools look: the model's metadata_props
        import onnx

        props = {prop.key: prop.value for prop in onnx.load(str(result.path)).metadata_props}
        assert json.loads(props[METADATA_NAME]) == described.metadata

    # predict takes the file alone and gives the checkpoint's digits
    digits = _digit_files(Path(loaded.config.data_dir), tmp_path)
    assert [p.index for p in predict(described, digits)] == [p.index for p in predict(loaded, digits)]


@NEEDS_ONNX
def test_int8_onnx_stays_within_0_3_points_at_under_30_percent_of_the_size(
    float_exports: dict[str, ExportResult], mnist_checkpoint: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["export", str(mnist_checkpoint), "--format", "onnx", "--quantize", "int8"]) == 0
    int8_file = mnist_checkpoint.with_name("cnn.int8.onnx")  # the default name, beside the checkpoint
    assert capsys.readouterr().out.startswith(f"onnx int8 model written to {int8_file} (metadata also in "
                                              f"{int8_file}.json); on {TEST_IMAGES} test images accuracy ")
    float_file = float_exports["onnx"].path
    float_check = json.loads(sidecar_path(float_file).read_text())["check"]
    int8_check = json.loads(sidecar_path(int8_file).read_text())["check"]
    assert abs(int8_check["accuracy"] - float_check["accuracy"]) <= INT8_MAX_ACCURACY_DROP
    assert int8_check["limit"] == {"max_accuracy_drop": INT8_MAX_ACCURACY_DROP}
    assert int8_file.stat().st_size <= 0.30 * float_file.stat().st_size  # measured: 26.5 % for the CNN
    assert load_exported(int8_file).metadata["quantization"] == "int8"  # set before quantizing, it survives


def test_export_cli_writes_next_to_the_checkpoint_and_states_the_check(
    mnist_mlp_checkpoint: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["export", str(mnist_mlp_checkpoint)]) == 0
    written = mnist_mlp_checkpoint.with_name("mlp.torchscript.pt")
    assert written.is_file() and sidecar_path(written).is_file()
    out = capsys.readouterr().out
    assert out.startswith(f"torchscript model written to {written} (metadata also in {written}.json); on "
                          f"{TEST_IMAGES} test images its logits differ from the eager model's by at most ")
    assert f"(tolerance {TOLERANCE:g}), the same digit on 100.00 %" in out and out.count("\n") == 1


def test_predict_cli_takes_an_exported_file(
    float_exports: dict[str, ExportResult], mnist_checkpoint: Path, mnist_root: Path, tmp_path: Path
) -> None:
    digits = [str(path) for path in _digit_files(mnist_root, tmp_path, 5)]
    outputs = []
    for model in (mnist_checkpoint, float_exports["torchscript"].path):  # model.pt: its sidecar says what it is
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            assert main(["predict", str(model), *digits]) == 0
        outputs.append(out.getvalue())
    assert outputs[0] == outputs[1] and outputs[0].count("\n") == 5


def test_a_file_that_fails_its_check_is_removed_with_its_sidecar(
    mnist_checkpoint: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "m.torchscript.pt"
    sidecar_path(path).write_text("{}")  # left by an earlier export to the same name
    monkeypatch.setattr("ignite_mnist.inference.export.TOLERANCE", -1.0)
    with pytest.raises(ExportError,
                       match=r"differs from the eager model by .* on 200 test images; nothing was written"):
        export_model(load_model(mnist_checkpoint), path, "torchscript", samples=200)
    assert not path.exists() and not sidecar_path(path).exists()


def test_quantizing_torchscript_is_a_usage_error(mnist_checkpoint: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["export", str(mnist_checkpoint), "--quantize", "int8"]) == 2
    assert capsys.readouterr().err == (
        "ignite-mnist: error: --quantize: torchscript files cannot be quantized here; int8 is available for onnx, "
        "executorch (see ignite-mnist export --help)\n")


def test_executorch_without_its_package_is_a_one_line_error(
    mnist_checkpoint: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in ("executorch", "executorch.runtime"):  # as if it were not installed
        monkeypatch.setitem(sys.modules, name, None)
    assert main(["export", str(mnist_checkpoint), "--format", "executorch", "--output", str(tmp_path / "m.pte")]) == 1
    assert capsys.readouterr().err == (
        'ignite-mnist: error: ExecuTorch needs the edge extra: pip install "ignite-mnist[edge]" '
        "(executorch==1.5.1)\n")
    assert not (tmp_path / "m.pte").exists()


def test_predict_on_a_file_without_metadata_or_unreadable_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    digit = tmp_path / "digit.png"
    Image.new("L", (28, 28), 0).save(digit)
    bare = tmp_path / "bare.torchscript.pt"
    with pytest.warns(FutureWarning):
        torch.jit.script(torch.nn.Linear(2, 2)).save(str(bare))  # not written by ignite-mnist export
    junk = tmp_path / "junk.torchscript.pt"
    junk.write_bytes(b"not a model")
    assert main(["predict", str(bare), str(digit)]) == 1
    assert main(["predict", str(junk), str(digit)]) == 1
    errors = capsys.readouterr().err.splitlines()
    assert errors[0] == (f"ignite-mnist: error: {bare}: holds no ignite-mnist metadata and has no sidecar; export it "
                         "with ignite-mnist export")
    assert errors[1].startswith(f"ignite-mnist: error: {junk}: not a TorchScript file (not a zip archive: ")  # checked
    # before torch.jit.load sees it
    assert len(errors) == 2


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
