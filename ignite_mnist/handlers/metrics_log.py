"""``metrics.jsonl``: one JSON object per epoch (and per mid-epoch validation).

Epoch rows hold ``epoch``, ``iteration``, ``train_loss``, ``val_loss``,
``val_accuracy`` (``null`` when that epoch was not validated), ``lr`` and
``seconds`` (wall time of the epoch). Ignite has no file logger of this kind.

Example:
    >>> attach_metrics_log(trainer, "runs/demo/metrics.jsonl", optimizer)  # doctest: +SKIP
    >>> # {"kind": "epoch", "epoch": 1, "iteration": 1719, "train_loss": 0.41, ...}
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import torch
from ignite.engine import Engine, Events

__all__ = ["MetricsLog", "attach_metrics_log", "read_metrics_log", "truncate_metrics_log"]


def _plain(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        return value.item() if value.numel() == 1 else value.tolist()
    return value


class MetricsLog:
    """Appends rows to a JSON-lines file; every row is flushed at once."""

    def __init__(self, path: str | Path, optimizer: torch.optim.Optimizer | None = None) -> None:
        self.path = Path(path)
        self.optimizer = optimizer
        self._epoch_started = time.perf_counter()
        self._epoch_first_iteration = 0

    def write(self, row: dict[str, Any]) -> None:
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(json.dumps({k: _plain(v) for k, v in row.items()}) + "\n")

    def _lr(self) -> float | None:
        return self.optimizer.param_groups[0]["lr"] if self.optimizer is not None else None

    def _validation(self, engine: Engine) -> dict[str, Any]:
        return {k: v for k, v in engine.state.metrics.items() if k.startswith("val_")}

    def epoch_started(self, engine: Engine) -> None:
        self._epoch_started = time.perf_counter()
        self._epoch_first_iteration = engine.state.iteration

    def epoch_completed(self, engine: Engine) -> None:
        validated = getattr(engine.state, "validated_at", -1) > self._epoch_first_iteration
        row = {
            "kind": "epoch",
            "epoch": engine.state.epoch,
            "iteration": engine.state.iteration,
            "train_loss": engine.state.metrics.get("train_loss"),
            "val_loss": None,
            "val_accuracy": None,
        }
        if validated:
            row.update(self._validation(engine))
        row.update(lr=self._lr(), seconds=round(time.perf_counter() - self._epoch_started, 4))
        self.write(row)

    def iteration_validation(self, engine: Engine) -> None:
        if getattr(engine.state, "validated_at", None) != engine.state.iteration:
            return
        if engine.state.epoch_length and engine.state.iteration % engine.state.epoch_length == 0:
            return  # the epoch row reports it
        self.write(
            {"kind": "validation", "epoch": engine.state.epoch, "iteration": engine.state.iteration}
            | self._validation(engine)
        )


def attach_metrics_log(
    trainer: Engine, path: str | Path, optimizer: torch.optim.Optimizer | None = None
) -> MetricsLog:
    """Append a row to ``path`` after each epoch and after each mid-epoch validation.

    Attach it after :func:`attach_validation` so each row sees that epoch's results.
    """
    log = MetricsLog(path, optimizer)
    trainer.add_event_handler(Events.EPOCH_STARTED, log.epoch_started)
    trainer.add_event_handler(Events.EPOCH_COMPLETED, log.epoch_completed)
    trainer.add_event_handler(Events.ITERATION_COMPLETED, log.iteration_validation)
    return log


def read_metrics_log(path: str | Path) -> list[dict[str, Any]]:
    """All rows of a ``metrics.jsonl`` file."""
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def truncate_metrics_log(path: str | Path, up_to_iteration: int) -> None:
    """Drop rows written after ``up_to_iteration`` (a resumed run writes them again)."""
    path = Path(path)
    if not path.exists():
        return
    kept = [row for row in read_metrics_log(path) if row["iteration"] <= up_to_iteration]
    partial = path.with_name(path.name + ".partial")
    partial.write_text("".join(json.dumps(row) + "\n" for row in kept), encoding="utf-8")
    partial.replace(path)
