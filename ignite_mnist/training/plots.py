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

import torch

from ignite_mnist.console import say
from ignite_mnist.errors import WriteError
from ignite_mnist.evaluation import MISCLASSIFIED_KEPT, Evaluation, Misclassified
from ignite_mnist.storage.files import own_folder, replacing
from ignite_mnist.storage.run_dir import RunDir

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = [
    "DPI",
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


def plot_curves(rows: Sequence[dict[str, Any]]) -> Figure:
    """Loss (train and validation) and validation accuracy per epoch, from ``metrics.jsonl`` rows.

    Example:
        >>> rows = [{"kind": "epoch", "epoch": 1, "train_loss": 0.4, "val_loss": 0.2, "val_accuracy": 0.95}]
        >>> figure = plot_curves(rows)
    """
    from matplotlib.ticker import MaxNLocator

    epochs = [row for row in rows if row.get("kind") == "epoch"]
    figure = _figure("curves")
    loss_axes, accuracy_axes = figure.subplots(1, 2)
    for key, label in (("train_loss", "train"), ("val_loss", "validation")):
        points = [(row["epoch"], row[key]) for row in epochs if row.get(key) is not None]
        if points:
            loss_axes.plot(*zip(*points), marker="o", label=label)
    points = [(row["epoch"], row["val_accuracy"] * 100) for row in epochs if row.get("val_accuracy") is not None]
    if points:
        accuracy_axes.plot(*zip(*points), marker="o", color="tab:green", label="validation")
    loss_axes.set(title="loss", xlabel="epoch", ylabel="cross-entropy")
    accuracy_axes.set(title="accuracy", xlabel="epoch", ylabel="%")
    for axes in (loss_axes, accuracy_axes):
        axes.xaxis.set_major_locator(MaxNLocator(integer=True))
        axes.grid(alpha=0.3)
        if axes.get_legend_handles_labels()[0]:
            axes.legend()
    return figure


def plot_confusion_matrix(matrix: torch.Tensor | Sequence[Sequence[int]], classes: Sequence[str]) -> Figure:
    """The confusion matrix as a heat map with counts (rows: true class, columns: predicted).

    Example:
    """
    counts = torch.as_tensor(matrix).long()
    figure = _figure("confusion_matrix")
    axes = figure.subplots()
    shown = axes.imshow(counts.numpy(), cmap="Blues")
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
        >>> example = Misclassified(torch.zeros(28, 28), label=7, prediction=1, confidence=0.9)
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
    canvas = torch.full((side * cell_height, side * cell_width), float("nan"))
    for position, example in enumerate(shown):
        row, column = divmod(position, side)
        top, left = row * cell_height + height // 2, column * cell_width
        canvas[top:top + height, left:left + width] = example.image
        axes.text(left + width / 2, top - 1, f"{classes[example.label]} -> {classes[example.prediction]}",
                  ha="center", va="bottom", fontsize=7)
    axes.imshow(canvas.numpy(), cmap=colormaps["gray"].with_extremes(bad="white"), vmin=0, vmax=1,
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
            axes.plot(*zip(*points), marker="." if len(points) > 1 else "o", label=name)
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


def write_run_plots(run_dir: str | Path | RunDir, evaluation: Evaluation) -> dict[str, Path]:
    """Draw a finished run's figures into ``<run_dir>/plots/`` and return ``{name: path}``.

    ``curves`` comes from the run's ``metrics.jsonl``; ``confusion_matrix`` and
    ``misclassified`` from ``evaluation``. Without matplotlib, prints one line and returns ``{}``.
    """
    if not matplotlib_available():
        say(f"plots skipped: matplotlib is not installed ({PLOTS_INSTALL})")
        return {}
    run_dir = run_dir if isinstance(run_dir, RunDir) else RunDir(run_dir)
    rows = run_dir.read_metrics()
    own_folder(run_dir.plots_dir, run_dir.path)  # a real folder of the run: a planted link is refused
    figures = {
        "curves": plot_curves(rows),
        "confusion_matrix": plot_confusion_matrix(evaluation.confusion_matrix, evaluation.classes),
        "misclassified": plot_misclassified(evaluation.misclassified, evaluation.classes, evaluation.wrong),
    }
    return {name: save_figure(figure, run_dir.plots_dir / PLOT_FILES[name]) for name, figure in figures.items()}
