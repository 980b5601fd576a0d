"""Plots: valid PNG files of the stated size after training; training goes on without matplotlib."""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path

import pytest
import torch

from ignite_mnist.settings.config import TrainConfig
from ignite_mnist.data import FASHION_MNIST
from ignite_mnist.training.plots import (
    FIGURE_PIXELS,
    PLOT_FILES,
    plot_confusion_matrix,
    plot_misclassified,
    save_figure,
)
from ignite_mnist.training.managed import run

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
