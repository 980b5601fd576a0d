"""Figures of a run: loss/accuracy curves, the confusion matrix, misclassified test digits.

Drawn with matplotlib's object API (``matplotlib.figure.Figure``, no pyplot, no
global state, no display needed). matplotlib is optional
(``pip install "ignite-mnist[plots]"``): without it :func:`write_run_plots`
prints one line and returns nothing, and training goes on.

Each figure has a fixed size in pixels (``FIGURE_PIXELS``). The files land in
``<run_dir>/plots/`` under the names of ``PLOT_FILES``; :func:`write_run_plots`
returns their paths. The confusion matrix and the misclassified digits come from
the run's one test :class:`~ignite_mnist.evaluation.Evaluation`, the curves from ``metrics.jsonl``.

Example:
    >>> figure = plot_confusion_matrix([[5, 1], [0, 6]], ["0", "1"])
    >>> figure.get_size_inches() * DPI
    array([700., 600.])
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ignite_mnist.console import say
from ignite_mnist.errors import WriteError
from ignite_mnist.evaluation import MISCLASSIFIED_KEPT, Evaluation, Misclassified
from ignite_mnist.storage.files import own_folder, replacing
from ignite_mnist.storage.run_dir import RunDir

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = [
    "DPI",
    "FEW_EPOCHS",
    "FIGURE_PIXELS",
    "PLOT_FILES",
    "matplotlib_available",
    "plot_confusion_matrix",
    "plot_curves",
    "plot_misclassified",
    "plot_validation_curves",
    "save_figure",
    "write_run_plots",
]

DPI = 100
#: Runs of fewer epochs than this have their curves drawn against iterations (one epoch is one point otherwise).
FEW_EPOCHS = 5
#: (width, height) in pixels of each saved figure.
FIGURE_PIXELS = {"curves": (1000, 400), "confusion_matrix": (700, 600), "misclassified": (800, 880),
                 "comparison": (1000, 500)}
#: The figures every run draws into ``<run_dir>/plots/``.
PLOT_FILES = {name: f"{name}.png" for name in ("curves", "confusion_matrix", "misclassified")}
PLOTS_INSTALL = 'pip install "ignite-mnist[plots]"'


def matplotlib_available() -> bool:
    """Whether matplotlib can be imported (the ``plots`` extra)."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def _figure(name: str) -> Figure:
    from matplotlib.figure import Figure

    width, height = FIGURE_PIXELS[name]
    return Figure(figsize=(width / DPI, height / DPI), dpi=DPI, layout="constrained")


def _curve_x(rows: Sequence[dict[str, Any]]) -> tuple[str, float]:
    """The curves' x axis: ``("iteration", 1)`` for a run of fewer than :data:`FEW_EPOCHS` epochs (or none
    finished), else ``("epoch", iterations per epoch)``."""
    epochs = [row for row in rows if row.get("kind") == "epoch" and row.get("epoch")]
    if not epochs or max(row["epoch"] for row in epochs) < FEW_EPOCHS:
        return "iteration", 1.0
    return "epoch", epochs[0]["iteration"] / epochs[0]["epoch"]


def _points(rows: Sequence[dict[str, Any]], key: str, per: float, scale: float = 1.0) -> list[tuple[float, float]]:
    return [(row["iteration"] / per, row[key] * scale) for row in rows if isinstance(row.get(key), (int, float))]


def _train_points(rows: Sequence[dict[str, Any]], unit: str, per: float) -> tuple[list[tuple[float, float]], str]:
    """The training loss: its running average at every row against iterations (the epoch mean where a log has
    none), the epoch mean against epochs."""
    running = _points(rows, "running_loss", per) if unit == "iteration" else []
    if running:
        return running, "train (running average)"
    return _points([row for row in rows if row.get("kind") == "epoch"], "train_loss", per), "train (epoch mean)"


def plot_curves(rows: Sequence[dict[str, Any]], label_smoothing: float = 0.0) -> Figure:
    """Loss (train and validation) and validation accuracy, from ``metrics.jsonl`` rows.

    Every validation is a point, mid-epoch ones (``--val-every-iterations``) included.
    A run of fewer than :data:`FEW_EPOCHS` epochs is drawn against iterations, with the
    running average of the training loss that each row carries; a longer one against
    epochs, with each epoch's mean training loss. Accuracy is in percent and its axis
    ends at 100 at most. With ``label_smoothing`` the loss panel says so: the training
    loss is then measured against smoothed targets and stays above the validation loss.

    Example:
        >>> rows = [{"kind": "validation", "epoch": 1, "iteration": 144, "running_loss": 0.9, "val_loss": 0.2,
        ...          "val_accuracy": 0.95},
        ...         {"kind": "epoch", "epoch": 1, "iteration": 430, "train_loss": 0.8, "running_loss": 0.6,
        ...          "val_loss": 0.05, "val_accuracy": 0.99}]
        >>> loss, accuracy = plot_curves(rows).axes
        >>> accuracy.get_xlabel(), accuracy.get_lines()[0].get_xydata().tolist(), bool(accuracy.get_ylim()[1] <= 100)
        ('iteration', [[144.0, 95.0], [430.0, 99.0]], True)
    """
    from matplotlib.ticker import MaxNLocator

    rows = sorted((row for row in rows if row.get("kind") in ("epoch", "validation")), key=lambda row: row["iteration"])
    unit, per = _curve_x(rows)
    figure = _figure("curves")
    loss_axes, accuracy_axes = figure.subplots(1, 2)
    train, train_label = _train_points(rows, unit, per)
    curves = ((loss_axes, train, train_label, None), (loss_axes, _points(rows, "val_loss", per), "validation", None),
              (accuracy_axes, _points(rows, "val_accuracy", per, 100), "validation", "tab:green"))
    for axes, points, label, color in curves:
        if points:
            axes.plot(*zip(*points, strict=True), marker="o" if len(points) <= 30 else None, label=label, color=color)
    smoothing = f" (train: against targets smoothed by {label_smoothing:g})" if label_smoothing else ""
    loss_axes.set(title=f"loss{smoothing}", xlabel=unit, ylabel="cross-entropy")
    accuracy_axes.set(title="accuracy", xlabel=unit, ylabel="%")
    accuracy_axes.set_ylim(top=min(accuracy_axes.get_ylim()[1], 100.0))  # the margin above a point stops at 100 %
    for axes in (loss_axes, accuracy_axes):
        axes.set_xlim(left=0)  # where training started
        axes.xaxis.set_major_locator(MaxNLocator(integer=True))
        axes.grid(alpha=0.3)
        if axes.get_legend_handles_labels()[0]:
            axes.legend()
    return figure


def plot_confusion_matrix(matrix: Any, classes: Sequence[str]) -> Figure:
    """The confusion matrix as a heat map with counts (rows: true class, columns: predicted).

    Example:
    """
    counts = np.asarray(matrix).astype(np.int64)  # a nested list, an array or a CPU tensor
    figure = _figure("confusion_matrix")
    axes = figure.subplots()
    shown = axes.imshow(counts, cmap="Blues")
    figure.colorbar(shown, ax=axes)
    ticks = range(len(classes))
    axes.set_xticks(ticks, classes, rotation=45 if max(len(c) for c in classes) > 2 else 0)
    axes.set_yticks(ticks, classes)
    axes.set(title="confusion matrix", xlabel="predicted", ylabel="true")
    threshold = float(counts.max()) / 2
    for true in ticks:
        for predicted in ticks:
            value = int(counts[true, predicted])
            axes.text(predicted, true, str(value), ha="center", va="center", fontsize=7,
                      color="white" if value > threshold else "black")
    return figure


def plot_misclassified(misclassified: Sequence[Misclassified], classes: Sequence[str], wrong: int,
                       limit: int = MISCLASSIFIED_KEPT) -> Figure:
    """A grid of the first ``limit`` misclassified images, each titled ``true -> predicted``.

    The grid is one image on one axes (a hundred small axes took seconds to lay out).

    Args:
        misclassified: the examples an :class:`~ignite_mnist.evaluation.Evaluation` kept.
        classes: class names.
        wrong: how many images were misclassified in all (for the title).
        limit: most images shown (a square grid).

    Example:
        >>> example = Misclassified(np.zeros((28, 28), dtype=np.float32), label=7, prediction=1, confidence=0.9)
        >>> [text.get_text() for text in plot_misclassified([example], ["0", "1", "2", "3", "4", "5", "6", "7"],
        ...                                                  wrong=1).axes[0].texts]
        ['7 -> 1']
    """
    from matplotlib import colormaps

    figure = _figure("misclassified")
    side = max(1, int(limit**0.5))
    figure.suptitle(f"misclassified test images ({wrong} in all): true -> predicted")
    axes = figure.subplots()
    axes.axis("off")
    shown = list(misclassified[:limit])
    height, width = shown[0].image.shape if shown else (28, 28)
    cell_height, cell_width = height + height // 2, width + width // 4  # room for a title above each image
    canvas = np.full((side * cell_height, side * cell_width), np.nan, dtype=np.float32)
    for position, example in enumerate(shown):
        row, column = divmod(position, side)
        top, left = row * cell_height + height // 2, column * cell_width
        canvas[top:top + height, left:left + width] = example.image
        axes.text(left + width / 2, top - 1, f"{classes[example.label]} -> {classes[example.prediction]}",
                  ha="center", va="bottom", fontsize=7)
    axes.imshow(canvas, cmap=colormaps["gray"].with_extremes(bad="white"), vmin=0, vmax=1,
                interpolation="nearest")
    return figure


def plot_validation_curves(curves: Mapping[str, Sequence[tuple[float, float]]], metric: str) -> Figure:
    """Several runs' validation curves of ``metric`` on one axes, against training images seen (``compare --plot``).

    Example:
        >>> figure = plot_validation_curves({"a": [(1000, 0.8), (2000, 0.9)], "b": [(1000, 0.7)]}, "val_accuracy")
        >>> [line.get_label() for line in figure.axes[0].get_lines()]
        ['a', 'b']
    """
    figure = _figure("comparison")
    axes = figure.subplots()
    for name, points in curves.items():
        if points:
            axes.plot(*zip(*points, strict=True), marker="." if len(points) > 1 else "o", label=name)
    axes.set(title=f"{metric} of each run", xlabel="training images seen", ylabel=metric)
    axes.grid(alpha=0.3)
    if axes.get_legend_handles_labels()[0]:  # beside the axes (the layout makes room), where it covers no curve
        figure.legend(fontsize=8, ncols=max(1, len(curves) // 24 + 1), loc="outside right upper")
    return figure


def save_figure(figure: Figure, path: str | Path) -> Path:
    """Write ``figure`` as a PNG at its own size (``FIGURE_PIXELS``), atomically; return the path.

    Raises:
        WriteError: the file cannot be written.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise WriteError(path, error) from None
    with replacing(path, "wb") as handle:
        figure.savefig(handle, format="png", dpi=DPI)
    return path


def write_run_plots(run_dir: str | Path | RunDir, evaluation: Evaluation, label_smoothing: float = 0.0
                    ) -> dict[str, Path]:
    """Draw a finished run's figures into ``<run_dir>/plots/`` and return ``{name: path}``.

    ``curves`` comes from the run's ``metrics.jsonl`` (its loss title says when ``label_smoothing`` was on);
    ``confusion_matrix`` and ``misclassified`` from ``evaluation``. Without matplotlib, prints one line and
    returns ``{}``.
    """
    if not matplotlib_available():
        say(f"plots skipped: matplotlib is not installed ({PLOTS_INSTALL})")
        return {}
    run_dir = run_dir if isinstance(run_dir, RunDir) else RunDir(run_dir)
    rows = run_dir.read_metrics()
    own_folder(run_dir.plots_dir, run_dir.path)  # a real folder of the run: a planted link is refused
    figures = {
        "curves": plot_curves(rows, label_smoothing),
        "confusion_matrix": plot_confusion_matrix(evaluation.confusion_matrix, evaluation.classes),
        "misclassified": plot_misclassified(evaluation.misclassified, evaluation.classes, evaluation.wrong),
    }
    return {name: save_figure(figure, run_dir.plots_dir / PLOT_FILES[name]) for name, figure in figures.items()}
