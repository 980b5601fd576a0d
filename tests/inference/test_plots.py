"""Plots: valid PNG files of the stated size after training; training goes on without matplotlib."""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path

import pytest
import torch

from ignite_mnist.data import FASHION_MNIST
from ignite_mnist.settings.config import TrainConfig
from ignite_mnist.training.managed import run
from ignite_mnist.training.plots import (
    FIGURE_PIXELS,
    PLOT_FILES,
    plot_confusion_matrix,
    plot_misclassified,
    save_figure,
)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def png_size(path: Path) -> tuple[int, int]:
    """(width, height) from a PNG's IHDR chunk, after checking the signature."""
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE and data[12:16] == b"IHDR", f"{path} is not a PNG file"
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


def test_training_draws_the_three_figures_into_the_run_directory(idx_run: Path) -> None:
    pytest.importorskip("matplotlib")
    for name, file_name in PLOT_FILES.items():
        path = idx_run / "plots" / file_name
        assert png_size(path) == FIGURE_PIXELS[name]
        assert path.stat().st_size > 5_000  # a drawn figure, not an empty canvas
    epochs = [json.loads(line) for line in (idx_run / "metrics.jsonl").read_text().splitlines()]
    assert len(epochs) == 2  # the curves have two points each


def test_figures_keep_their_size_with_long_class_names_and_no_mistakes(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    classes = FASHION_MNIST.classes
    matrix = torch.randint(0, 1000, (10, 10))
    confusion = save_figure(plot_confusion_matrix(matrix, classes), tmp_path / "cm.png")
    no_mistakes = save_figure(plot_misclassified([], classes, wrong=0), tmp_path / "m.png")
    assert png_size(confusion) == FIGURE_PIXELS["confusion_matrix"]
    assert png_size(no_mistakes) == FIGURE_PIXELS["misclassified"]


def test_training_without_matplotlib_skips_plots_with_one_line(
    idx_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # matplotlib cannot be uninstalled for one test; a None entry in sys.modules makes its import fail the same way
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    summary = run(TrainConfig(data_dir=str(idx_root), val_size=200, epochs=1, output_dir=str(tmp_path),
                              run_name="no-mpl", progress="none", tracker=["none"]))
    assert summary.test_accuracy > 0
    out = capsys.readouterr().out
    assert out.count("plots skipped") == 1
    assert 'plots skipped: matplotlib is not installed (pip install "ignite-mnist[plots]")' in out
    assert not (tmp_path / "no-mpl" / "plots").exists()
    assert (tmp_path / "no-mpl" / "summary.json").is_file()


@pytest.mark.parametrize("runs", [2, 30])
def test_the_comparison_legend_covers_no_curve(runs: int) -> None:
    from ignite_mnist.training.plots import plot_validation_curves

    curves = {f"trial-{n:04d}": [(1000 * step, 0.5 + n / 100 + step / 10) for step in range(1, 5)] for n in range(runs)}
    figure = plot_validation_curves(curves, "val_accuracy")
    figure.savefig(io.BytesIO(), format="png")  # laid out as when saved
    (axes,) = figure.axes
    (legend,) = figure.legends
    legend, plotted = legend.get_window_extent(), axes.get_window_extent()
    assert legend.x0 >= plotted.x1  # beside the plotting area, not over it
    assert legend.x1 <= figure.bbox.x1 + 1  # and inside the figure


def test_a_one_epoch_run_is_drawn_against_iterations_with_a_point_per_validation_and_at_most_100_percent(
    idx_root: Path, tmp_path: Path
) -> None:
    pytest.importorskip("matplotlib")
    from ignite_mnist.storage.run_dir import read_metrics_log
    from ignite_mnist.training.plots import plot_curves

    # 1,000 training images in batches of 32: 32 iterations, validated at 10, 20, 30 and the epoch's end
    summary = run(TrainConfig(data_dir=str(idx_root), val_size=200, epochs=1, val_every_iterations=10,
                              label_smoothing=0.1, output_dir=str(tmp_path), run_name="one", progress="none",
                              tracker=["none"]))
    assert png_size(Path(summary.run_dir) / "plots" / PLOT_FILES["curves"]) == FIGURE_PIXELS["curves"]
    rows = read_metrics_log(Path(summary.run_dir) / "metrics.jsonl")
    assert [row["iteration"] for row in rows] == [10, 20, 30, 32]
    assert all(isinstance(row["running_loss"], float) for row in rows)

    loss, accuracy = plot_curves(rows, label_smoothing=0.1).axes
    assert loss.get_xlabel() == accuracy.get_xlabel() == "iteration"
    assert "smoothed by 0.1" in loss.get_title()
    (validation,) = accuracy.get_lines()
    assert validation.get_xdata().tolist() == [10, 20, 30, 32]
    assert validation.get_ydata().tolist() == [row["val_accuracy"] * 100 for row in rows]
    train, _ = loss.get_lines()
    assert train.get_label() == "train (running average)" and len(train.get_xdata()) == 4
    assert accuracy.get_ylim()[1] <= 100 and max(validation.get_ydata()) <= accuracy.get_ylim()[1]


def test_a_longer_run_is_drawn_against_epochs_with_mid_epoch_validations_between() -> None:
    pytest.importorskip("matplotlib")
    from ignite_mnist.training.plots import FEW_EPOCHS, plot_curves

    rows = [{"kind": "epoch", "epoch": epoch, "iteration": 100 * epoch, "train_loss": 1 / epoch,
             "running_loss": 1 / epoch, "val_loss": 0.5 / epoch, "val_accuracy": 1.0}
            for epoch in range(1, FEW_EPOCHS + 1)]
    rows.insert(1, {"kind": "validation", "epoch": 2, "iteration": 150, "val_loss": 0.3, "val_accuracy": 0.99})
    loss, accuracy = plot_curves(rows).axes
    assert accuracy.get_xlabel() == "epoch"
    assert accuracy.get_lines()[0].get_xdata().tolist() == [1, 1.5, *range(2, FEW_EPOCHS + 1)]
    assert loss.get_lines()[0].get_label() == "train (epoch mean)"
    assert accuracy.get_ylim()[1] == 100  # every point at 100 %: the axis stops there, no margin above
