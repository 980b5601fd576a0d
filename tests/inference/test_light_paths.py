"""What each inference command loads: an exported ONNX file is predicted, evaluated and served without torch,
torchvision or Ignite; a checkpoint loads torch, and Ignite and matplotlib only where the command needs them.

Each command runs in a fresh interpreter (``python -c``, the command line's ``main``) that reports, when it
exits, which of the heavy packages are in ``sys.modules``.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import urllib.request
from pathlib import Path

import pytest
from PIL import Image, ImageDraw

from ignite_mnist.inference.export import export_model
from ignite_mnist.inference.trained import evaluate, load_model

HEAVY = ("torch", "torchvision", "ignite", "wandb", "matplotlib")
#: Runs the command line's main with the arguments given, then says which of HEAVY were imported (last stderr line).
DRIVER = (
    "import atexit, json, sys\n"
    f"atexit.register(lambda: print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]), file=sys.stderr))\n"
    "from ignite_mnist.cli import main\n"
    "sys.exit(main(sys.argv[1:]))\n"
)


def _command(*args: str | Path) -> tuple[int, str, list[str]]:
    """(exit code, stdout, the heavy packages imported) of ``ignite-mnist ARGS`` in a fresh interpreter."""
    result = subprocess.run([sys.executable, "-c", DRIVER, *map(str, args)], capture_output=True, text=True,
                            timeout=300)
    *_, loaded = result.stderr.strip().splitlines()
    return result.returncode, result.stdout, json.loads(loaded)


@pytest.fixture(scope="module")
def onnx_file(idx_run: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("onnxruntime", reason="the onnx extra is not installed")
    path = tmp_path_factory.mktemp("light") / "model.onnx"
    export_model(load_model(idx_run), path, "onnx")
    return path


@pytest.fixture(scope="module")
def seven(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A seven drawn in black on white paper."""
    path = tmp_path_factory.mktemp("drawings") / "seven.png"
    drawing = Image.new("L", (120, 160), color=255)
    ImageDraw.Draw(drawing).line([(30, 20), (90, 20), (50, 140)], fill=0, width=12)
    drawing.save(path)
    return path


def test_predict_on_an_onnx_file_imports_no_torch_and_answers_as_the_checkpoint(
        onnx_file: Path, idx_run: Path, seven: Path) -> None:
    code, onnx_out, loaded = _command("predict", onnx_file, seven, "--json")
    assert code == 0 and loaded == []
    code, checkpoint_out, loaded = _command("predict", idx_run, seven, "--json")
    assert code == 0 and loaded == ["torch"]  # a checkpoint needs torch, and nothing else heavy
    (from_onnx,), (from_checkpoint,) = json.loads(onnx_out), json.loads(checkpoint_out)
    assert from_onnx["label"] == from_checkpoint["label"]
    assert from_onnx["probability"] == pytest.approx(from_checkpoint["probability"], abs=1e-5)


def test_evaluate_on_an_onnx_file_imports_no_torch_and_finds_the_checkpoints_numbers(
        onnx_file: Path, idx_run: Path, idx_root: Path, tmp_path: Path) -> None:
    code, stdout, loaded = _command("evaluate", onnx_file, "--data-dir", idx_root, "--json",
                                    "--plot", tmp_path / "matrix.png")
    assert code == 0 and loaded == ["matplotlib"]  # the confusion matrix is drawn
    assert (tmp_path / "matrix.png").stat().st_size > 0
    result = json.loads(stdout)
    expected = evaluate(load_model(idx_run), idx_root)
    assert result["confusion_matrix"] == expected.confusion_matrix
    assert result["accuracy"] == expected.accuracy and result["samples"] == expected.samples
    assert result["loss"] == pytest.approx(expected.loss, rel=1e-5)


def test_evaluate_on_a_checkpoint_imports_ignite_but_not_torchvision_or_wandb(idx_run: Path, tmp_path: Path) -> None:
    code, _, loaded = _command("evaluate", idx_run, "--json", "--plot", tmp_path / "matrix.png")
    assert code == 0 and loaded == ["torch", "ignite", "matplotlib"]


def test_errors_on_the_onnx_path_are_one_line_without_torch(tmp_path: Path, seven: Path) -> None:
    (tmp_path / "broken.onnx").write_bytes(b"not a model")
    code, _, loaded = _command("predict", tmp_path / "broken.onnx", seven)
    assert code == 1 and loaded == []
    code, _, loaded = _command("evaluate", tmp_path / "missing.onnx")
    assert code == 1 and loaded == []


@pytest.mark.parametrize("source", ["onnx", "checkpoint"])
def test_the_pad_serves_an_onnx_file_without_torch_and_a_checkpoint_with_torch_alone(
        source: str, onnx_file: Path, idx_run: Path, seven: Path) -> None:
    process = subprocess.Popen(
        [sys.executable, "-c", DRIVER, "demo", str(onnx_file if source == "onnx" else idx_run), "--port", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    stuck = threading.Timer(120, process.kill)  # a pad that never says where it is fails the test
    stuck.start()
    try:
        line = process.stdout.readline()  # "digit pad for ... at http://127.0.0.1:PORT/ (Ctrl-C stops it)"
        url = line.split(" at ")[1].split()[0]
        request = urllib.request.Request(url + "predict", data=seven.read_bytes(), method="POST",
                                         headers={"Content-Type": "image/png"})
        with urllib.request.urlopen(request, timeout=60) as response:
            answer = json.load(response)
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=60)
    finally:
        stuck.cancel()
        process.kill()
    assert len(answer["probabilities"]) == 10 and process.returncode == 0  # Ctrl-C stops the pad normally
    assert json.loads(stderr.strip().splitlines()[-1]) == ([] if source == "onnx" else ["torch"])
