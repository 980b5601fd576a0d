"""``evaluate``: a real run's checkpoint reproduces its summary; per-class numbers; bad checkpoints."""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from ignite_mnist.cli import main
from ignite_mnist.data import load_split_tensors, normalise
from ignite_mnist.inference.trained import evaluate, load_model, predict_tensors
from ignite_mnist.storage.run_dir import model_checkpoint
from tests.conftest import REPO, run_cli


def test_evaluate_reproduces_the_test_accuracy_of_the_runs_summary(idx_run: Path) -> None:
    summary = json.loads((idx_run / "summary.json").read_text())
    best = idx_run / summary["best_checkpoint"]
    assert summary["best_checkpoint"] and best.is_file()
    result = evaluate(load_model(best))
    assert result.samples == 300
    assert result.accuracy == pytest.approx(summary["test_accuracy"], abs=1e-9)
    assert result.loss == pytest.approx(summary["test_loss"], rel=1e-5)
    # a run directory stands for its best checkpoint
    assert model_checkpoint(idx_run) == best


def test_evaluate_cli_json_and_confusion_matrix_png(idx_run: Path, tmp_path: Path) -> None:
    plot = tmp_path / "cm.png"
    result = run_cli("evaluate", str(idx_run), "--plot", str(plot), "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    summary = json.loads((idx_run / "summary.json").read_text())
    assert report["accuracy"] == pytest.approx(summary["test_accuracy"], abs=1e-9)
    assert report["checkpoint"] == str(idx_run / summary["best_checkpoint"]) and report["plot"] == str(plot)
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_evaluate_cli_text_report(idx_run: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["evaluate", str(idx_run)]) == 0
    out = capsys.readouterr().out
    summary = json.loads((idx_run / "summary.json").read_text())
    assert f"test accuracy {summary['test_accuracy'] * 100:.2f} % (300 images)" in out
    assert "per-class accuracy:" in out
    assert "confusion matrix (rows: true class, columns: predicted):" in out
    default_plot = idx_run / (Path(summary["best_checkpoint"]).stem + ".confusion_matrix.png")
    assert out.rstrip().endswith(f"confusion matrix drawn to {default_plot}") and default_plot.is_file()


def test_per_class_accuracy_and_confusion_matrix_match_the_models_predictions(mnist_checkpoint: Path) -> None:
    loaded = load_model(mnist_checkpoint)
    result = evaluate(loaded)
    images, labels = load_split_tensors(loaded.config.data_dir, "mnist", train=False)
    predicted = predict_tensors(loaded.model, normalise(images, loaded.spec.mean, loaded.spec.std)).argmax(1)
    assert result.samples == 10_000
    assert result.accuracy == pytest.approx(int((predicted == labels).sum()) / 10_000, abs=1e-12)
    assert result.accuracy > 0.95
    for digit in range(10):
        mine = labels == digit
        expected = int((predicted[mine] == digit).sum()) / int(mine.sum())
        assert result.per_class_accuracy[digit] == pytest.approx(expected, abs=1e-6)
        assert result.confusion_matrix[digit][digit] == int((predicted[mine] == digit).sum())
        assert sum(result.confusion_matrix[digit]) == int(mine.sum())


class NotATensor:
    """Pickled into a checkpoint, this makes ``weights_only=True`` loading refuse the file."""


@pytest.mark.parametrize("damage", ["missing", "truncated", "unsafe", "not a checkpoint", "wrong weights"])
def test_unusable_checkpoints_end_in_one_line(
    damage: str, mnist_checkpoint: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "bad.pt"
    good = torch.load(mnist_checkpoint, weights_only=True)
    if damage == "truncated":
        path.write_bytes(mnist_checkpoint.read_bytes()[:5000])
    elif damage == "unsafe":
        torch.save({"model": NotATensor(), "config": good["config"]}, path)
    elif damage == "not a checkpoint":
        torch.save({"weights": torch.zeros(3)}, path)
    elif damage == "wrong weights":
        torch.save({"model": good["model"], "config": good["config"] | {"model": "mlp"}}, path)
    expected = {
        "missing": "no such checkpoint file", "truncated": "corrupted or truncated", "unsafe": "refused to load",
        "not a checkpoint": "not a training checkpoint", "wrong weights": "weights do not fit the 'mlp' model",
    }[damage]
    assert main(["evaluate", str(path)]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"ignite-mnist: error: {path}: ") and expected in err
    assert err.count("\n") == 1


@pytest.mark.slow  # training and two evaluations in CLI subprocesses
def test_evaluate_from_another_folder_uses_the_same_best_checkpoint(idx_root: Path, tmp_path: Path) -> None:
    trained_in, elsewhere = tmp_path / "project", tmp_path / "elsewhere"
    trained_in.mkdir()
    elsewhere.mkdir()
    trained = run_cli("--data-dir", str(idx_root), "--output-dir", "runs", "--run-name", "x", "--val-size", "200",
                      "--epochs", "2", "--progress", "none", "--wandb-mode", "disabled", "--no-plots", cwd=trained_in)
    assert trained.returncode == 0, trained.stderr
    here = run_cli("evaluate", "runs/x", "--json", "--plot", str(tmp_path / "here.png"), cwd=trained_in)
    there = run_cli("evaluate", str(trained_in / "runs" / "x"), "--json", "--plot", str(tmp_path / "there.png"),
                    cwd=elsewhere)
    assert here.returncode == 0 and there.returncode == 0, here.stderr + there.stderr
    here_report, there_report = json.loads(here.stdout), json.loads(there.stdout)
    best = trained_in / "runs" / "x" / json.loads((trained_in / "runs" / "x" / "summary.json").read_text())[
        "best_checkpoint"]
    assert Path(trained_in / here_report["checkpoint"]).resolve() == best.resolve() == Path(there_report["checkpoint"])
    assert best.name.startswith("best_checkpoint_") and here_report["accuracy"] == there_report["accuracy"]


def test_fashion_mnist_class_names_are_shown_whole() -> None:
    from ignite_mnist.data import FASHION_MNIST
    from ignite_mnist.evaluation import evaluation_from_confusion

    report = evaluation_from_confusion(torch.eye(10, dtype=torch.long) * 3, 0.1, FASHION_MNIST.classes).format()
    per_class, matrix = report.split("confusion matrix")
    for name in FASHION_MNIST.classes:  # "T-shirt/top", "Ankle boot": nothing cut
        assert f"  {name}  " in per_class + " " and name in matrix.splitlines()[1]
        assert any(line.strip().startswith(name) for line in matrix.splitlines()[2:])


def test_a_missing_checkpoint_hint_fits_evaluate(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["evaluate", str(tmp_path / "nope")]) == 1
    err = capsys.readouterr().err
    assert err == f"ignite-mnist: error: {tmp_path / 'nope'}: no such checkpoint file; check the path\n"
    assert "--resume" not in err  # a training flag


def test_a_usage_error_of_evaluate_points_to_its_own_help(idx_run: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["evaluate", str(idx_run), "--model", "cnn"]) == 2
    err = capsys.readouterr().err
    assert "was trained with --model mlp; leave --model out" in err
    assert err.endswith(" (see ignite-mnist evaluate --help)\n") and err.count("\n") == 1


@pytest.mark.parametrize("command", ["evaluate", "predict"])  # export ends the same way: main() handles it for all
def test_a_closed_pipe_ends_quietly_with_exit_141(command: str, idx_run: Path, tmp_path: Path) -> None:
    from PIL import Image, ImageDraw

    digit = Image.new("L", (60, 80), color=255)
    ImageDraw.Draw(digit).line([(15, 10), (45, 10), (25, 70)], fill=0, width=6)  # a seven
    digit.save(tmp_path / "seven.png")
    args = {"evaluate": ["--plot", str(tmp_path / "cm.png")], "predict": [str(tmp_path / "seven.png")]}[command]
    process = subprocess.Popen([sys.executable, "-m", "ignite_mnist", command, str(idx_run), *args],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=REPO)
    process.stdout.close()  # the reader is gone before the first line, as with `| head -0`
    err = process.stderr.read().decode()
    assert process.wait(timeout=300) == 141, err  # the shell's code for SIGPIPE
    assert err == ""  # no BrokenPipeError traceback, no "Exception ignored" at exit


def test_the_readmes_exit_141_example_gives_141(idx_run: Path, tmp_path: Path) -> None:
    # the README's line, in a real shell: the pipeline's first status is evaluate's
    command = (f"{shlex.quote(sys.executable)} -m ignite_mnist evaluate {shlex.quote(str(idx_run))} "
               f"--plot {shlex.quote(str(tmp_path / 'cm.png'))} | head -0; echo ${{PIPESTATUS[0]}}")
    result = subprocess.run(["bash", "-c", command], capture_output=True, text=True, cwd=REPO, timeout=300)
    assert result.stdout.strip() == "141", result.stderr
    assert result.stderr == ""
    readme = (REPO / "README.md").read_text()
    assert "ignite-mnist evaluate runs/<run> \\| head -0; echo ${PIPESTATUS[0]}" in readme
