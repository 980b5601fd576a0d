"""``run(config)``: the one place that puts data, model, engines and handlers together.

Example:
    >>> from ignite_mnist import TrainConfig, run
    >>> summary = run(TrainConfig(epochs=1, data_dir="../shared/data"))  # doctest: +SKIP
    >>> summary.test_accuracy > 0.95  # doctest: +SKIP
    True
"""

from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import torch
from ignite.engine import Engine, Events
from ignite.utils import manual_seed

from ignite_mnist.config import TrainConfig
from ignite_mnist.data import TensorLoader, load_splits
from ignite_mnist.engines import build_optimizer, create_evaluator, create_trainer
from ignite_mnist.errors import ConfigError, RunDirError
from ignite_mnist.handlers import attach_metrics_log, attach_progress, attach_validation
from ignite_mnist.models import build_model

__all__ = ["EVAL_BATCH_SIZE", "Summary", "resolve_device", "run"]

EVAL_BATCH_SIZE = 1000


@dataclass
class Summary:
    """What ``summary.json`` holds at the end of a run."""

    run_dir: str
    test_accuracy: float
    test_loss: float
    best_val_accuracy: float | None
    epochs_completed: int
    train_seconds: float
    samples_per_second: float
    best_checkpoint: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def resolve_device(name: str) -> torch.device:
    """``auto`` -> ``cuda`` when available, else ``cpu``; ``cuda`` without a GPU is an error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("--device", "cuda was requested but no CUDA device is available; use --device cpu")
    return torch.device(name)


def default_run_name(config: TrainConfig) -> str:
    return f"{config.dataset}-{config.model}-{datetime.now():%Y%m%d-%H%M%S}"


def prepare_run_dir(config: TrainConfig) -> Path:
    """Create ``<output-dir>/<run-name>/``, refusing one that already holds a run."""
    run_dir = Path(config.output_dir) / (config.run_name or default_run_name(config))
    if (run_dir / "config.json").exists():
        raise RunDirError(f"{run_dir} already holds a run; choose another --run-name")
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "config.json").write_text(json.dumps(config.to_dict(), indent=2) + "\n")
    except OSError as error:
        raise RunDirError(f"cannot write to {run_dir} ({error.strerror}); choose a writable --output-dir") from None
    return run_dir


def _max_metric(trainer: Engine, name: str, best: float | None) -> float | None:
    value = trainer.state.metrics.get(name)
    if value is None:
        return best
    return float(value) if best is None else max(best, float(value))


def run(config: TrainConfig) -> Summary:
    """Train, validate and test as ``config`` says; write the run directory; return the summary."""
    config.validate()
    device = resolve_device(config.device)
    splits = load_splits(config.data_dir, config.dataset, val_size=config.val_size, seed=config.seed)
    run_dir = prepare_run_dir(config)
    manual_seed(config.seed)

    spec = splits.spec
    train_loader = TensorLoader(
        *splits.train, config.batch_size, mean=spec.mean, std=spec.std, shuffle=True, seed=config.seed, device=device
    )
    val_loader = TensorLoader(*splits.val, EVAL_BATCH_SIZE, mean=spec.mean, std=spec.std, device=device)
    test_loader = TensorLoader(*splits.test, EVAL_BATCH_SIZE, mean=spec.mean, std=spec.std, device=device)

    model = build_model(config.model, len(spec.classes)).to(device)
    optimizer = build_optimizer(
        config.optimizer, model.parameters(), lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay
    )
    trainer = create_trainer(model, optimizer, device=device)
    evaluator = create_evaluator(model, device)

    attach_validation(trainer, evaluator, val_loader)
    attach_metrics_log(trainer, run_dir / "metrics.jsonl", optimizer)
    attach_progress(trainer, {"validation": evaluator}, mode=config.progress, metric_names=["loss"])

    best_val_accuracy: float | None = None

    def track_best(engine: Engine) -> None:
        nonlocal best_val_accuracy
        best_val_accuracy = _max_metric(engine, "val_accuracy", best_val_accuracy)

    trainer.add_event_handler(Events.EPOCH_COMPLETED, track_best)

    started = time.perf_counter()
    trainer.run(train_loader, max_epochs=config.epochs)
    train_seconds = time.perf_counter() - started

    tester = create_evaluator(model, device, num_classes=len(spec.classes), confusion_matrix=True)
    test_metrics = tester.run(test_loader).metrics
    samples = trainer.state.epoch * len(splits.train[1])
    summary = Summary(
        run_dir=str(run_dir),
        test_accuracy=float(test_metrics["accuracy"]),
        test_loss=float(test_metrics["loss"]),
        best_val_accuracy=best_val_accuracy,
        epochs_completed=trainer.state.epoch,
        train_seconds=round(train_seconds, 3),
        samples_per_second=round(samples / train_seconds, 1),
    )
    (run_dir / "summary.json").write_text(json.dumps(summary.to_dict(), indent=2) + "\n")
    return summary
