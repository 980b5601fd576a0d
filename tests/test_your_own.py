"""Your own model (by import path), your own images (a folder) and your own handlers, in the managed run
and in every command; a custom trainer's checkpoints in evaluate/predict/export."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from ignite.engine import Events
from PIL import Image

from ignite_mnist import TrainConfig, run
from ignite_mnist.data import load_split_tensors
from ignite_mnist.storage.checkpoints import find_latest_checkpoint, load_checkpoint
from tests.conftest import REPO, run_cli

QUIET = ("--progress", "none", "--wandb-mode", "disabled", "--no-plots")
NETS = '''
from torch import nn


class Net(nn.Sequential):
    def __init__(self, num_classes=10):
        super().__init__(nn.Flatten(), nn.Linear(784, 64), nn.ReLU(), nn.Linear(64, num_classes))
'''


def write_digit_folder(root: Path, images: torch.Tensor, labels: torch.Tensor, split: str) -> list[Path]:
    """Real MNIST digits as PNG files in ``root/<split>/<digit>/<index>.png`` (the ImageFolder layout)."""
    paths = []
    for index, (image, label) in enumerate(zip(images, labels, strict=False)):
        path = root / split / str(int(label)) / f"{index}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(image.numpy()).save(path)
        paths.append(path)
    return paths


@pytest.fixture(scope="module")
def digit_folder(mnist_root: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Path]]:
    """2,000 training and 400 test images, taken from the real MNIST test set, as PNG files."""
    images, labels = load_split_tensors(mnist_root, "mnist", train=False)
    root = tmp_path_factory.mktemp("digits")
    write_digit_folder(root, images[:2000], labels[:2000], "train")
    return root, write_digit_folder(root, images[2000:2400], labels[2000:2400], "test")


@pytest.mark.integration
def test_own_model_and_image_folder_train_resume_evaluate_predict_export(
    digit_folder: tuple[Path, list[Path]], tmp_path: Path
) -> None:
    folder, test_files = digit_folder
    (tmp_path / "my_nets.py").write_text(NETS)  # found in the current folder, as `python -m` finds modules
    train = ("--model", "my_nets:Net", "--dataset", f"folder:{folder}", "--val-size", "200", "--batch-size", "64",
             "--output-dir", "runs", "--run-name", "own", *QUIET)
    first = run_cli(*train, "--epochs", "1", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    refused = run_cli("--resume", "auto", "--output-dir", "runs", "--run-name", "own", "--epochs", "3", cwd=tmp_path)
    assert refused.returncode == 2 and "add --model my_nets:Net if you trust it" in refused.stderr, refused.stderr
    resumed = run_cli("--resume", "auto", "--output-dir", "runs", "--run-name", "own", "--epochs", "3",
                      "--model", "my_nets:Net", cwd=tmp_path)  # your own code: named again on the command line
    assert resumed.returncode == 0, resumed.stderr
    run_dir = tmp_path / "runs" / "own"
    config, summary = (json.loads((run_dir / name).read_text()) for name in ("config.json", "summary.json"))
    assert config["model"] == "my_nets:Net" and config["dataset"] == f"folder:{folder}"
    assert summary["epochs_completed"] == 3 and summary["resumed_at"] == [29]  # 1,800 images in batches of 64
    assert load_checkpoint(find_latest_checkpoint(run_dir / "checkpoints"))["dataset"]["classes"] == [
        str(d) for d in range(10)]

    evaluated = run_cli("evaluate", "runs/own", "--model", "my_nets:Net", "--json", "--plot", str(tmp_path / "cm.png"),
                        cwd=tmp_path)
    assert evaluated.returncode == 0, evaluated.stderr
    report = json.loads(evaluated.stdout)
    assert report["samples"] == 400 and report["accuracy"] == pytest.approx(summary["test_accuracy"], abs=1e-9)
    predicted = run_cli("predict", "runs/own", *map(str, test_files[:50]), "--model", "my_nets:Net", "--json",
                        cwd=tmp_path)
    assert predicted.returncode == 0, predicted.stderr
    answers = json.loads(predicted.stdout)
    right = sum(p["label"] == path.parent.name for p, path in zip(answers, test_files[:50], strict=True))
    assert right >= 35  # the test images, through predict's own preprocessing
    exported = run_cli("export", "runs/own", "--model", "my_nets:Net", "--format", "torchscript", cwd=tmp_path)
    assert exported.returncode == 0, exported.stderr
    assert "differ from the eager model's by at most" in exported.stdout


def test_a_folder_in_the_wrong_layout_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "digits" / "0").mkdir(parents=True)  # classes directly in the folder: no train/ and test/
    result = run_cli("--dataset", f"folder:{tmp_path / 'digits'}", "--output-dir", str(tmp_path / "runs"), *QUIET)
    assert result.returncode == 1 and result.stderr.count("\n") == 1, result.stderr
    assert "no train/ folder" in result.stderr and "PATH/train/<class>/<image>" in result.stderr


def test_a_model_path_that_does_not_import_is_one_line(idx_root: Path, tmp_path: Path) -> None:
    result = run_cli("--model", "not_a_module:Net", "--data-dir", str(idx_root), "--val-size", "200",
                     "--output-dir", str(tmp_path), *QUIET)
    assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
    assert "--model: cannot import not_a_module (ModuleNotFoundError" in result.stderr


class Counter:
    """A user's stateful handler object."""

    def __init__(self) -> None:
        self.iterations = 0

    def state_dict(self) -> dict[str, int]:
        return {"iterations": self.iterations}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.iterations = state["iterations"]


COUNTERS: list[Counter] = []


def count_iterations(parts) -> dict[str, Counter]:
    counter = Counter()
    COUNTERS.append(counter)
    parts.trainer.add_event_handler(Events.ITERATION_COMPLETED, lambda _: setattr(counter, "iterations",
                                                                                  counter.iterations + 1))
    return {"counter": counter}


def test_own_handlers_attach_to_the_managed_run_and_resume_with_it(idx_root: Path, tmp_path: Path) -> None:
    config = TrainConfig(data_dir=str(idx_root), output_dir=str(tmp_path), run_name="hooked", val_size=200, epochs=1,
                         progress="none", tracker=["none"], plots=False)
    run(config, attach=count_iterations)
    checkpoint = load_checkpoint(find_latest_checkpoint(tmp_path / "hooked" / "checkpoints"))
    assert checkpoint["counter"] == {"iterations": 32}
    resumed = TrainConfig.from_dict(config.to_dict() | {"epochs": 2, "resume": "auto"})
    run(resumed, attach=count_iterations)
    assert COUNTERS[-1].iterations == 64  # restored to 32, then 32 more


@pytest.mark.slow  # train, evaluate, predict and export in CLI subprocesses
def test_a_custom_trainers_checkpoint_in_evaluate_predict_and_export(idx_root: Path, tmp_path: Path) -> None:
    trained = subprocess.run(
        [sys.executable, str(REPO / "examples" / "custom_trainer.py"), "--data-dir", str(idx_root), "--output-dir",
         str(tmp_path / "custom"), "--val-size", "200", "--epochs", "1", "--progress", "none"],
        capture_output=True, text=True, timeout=600,
    )
    assert trained.returncode == 0, trained.stderr
    examples = {"PYTHONPATH": str(REPO / "examples")}
    without = run_cli("evaluate", str(tmp_path / "custom"), env=examples)
    assert without.returncode == 1 and without.stderr.count("\n") == 1
    assert "holds weights but no ignite-mnist settings; pass --model" in without.stderr
    evaluated = run_cli("evaluate", str(tmp_path / "custom"), "--model", "custom_trainer:Net", "--data-dir",
                        str(idx_root), "--json", "--plot", str(tmp_path / "cm.png"), env=examples)
    assert evaluated.returncode == 0, evaluated.stderr
    reported = float(trained.stdout.strip().splitlines()[-1].split()[2]) / 100  # "test accuracy 97.33 % with ..."
    assert json.loads(evaluated.stdout)["accuracy"] == pytest.approx(reported, abs=1e-4)
    exported = run_cli("export", str(tmp_path / "custom"), "--model", "custom_trainer:Net", "--data-dir",
                       str(idx_root), "--format", "torchscript", env=examples)
    assert exported.returncode == 0, exported.stderr
    image, _label = (t[0] for t in load_split_tensors(idx_root, "mnist", train=False))
    Image.fromarray(image.numpy()).save(tmp_path / "digit.png")
    predicted = run_cli("predict", str(tmp_path / "custom"), str(tmp_path / "digit.png"), "--model",
                        "custom_trainer:Net", "--json", env=examples)
    assert predicted.returncode == 0, predicted.stderr
    assert json.loads(predicted.stdout)[0]["label"] in [str(d) for d in range(10)]
