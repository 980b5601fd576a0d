"""``run(config)``: the one place that puts data, model, engines and handlers together.

Reading order for any flag: ``config.py`` declares it, this module passes it on,
the handler named here uses it.

Example:
    >>> from ignite_mnist import TrainConfig, run
    >>> summary = run(TrainConfig(epochs=1, data_dir="../shared/data"))  # doctest: +SKIP
    >>> summary.test_accuracy > 0.95  # doctest: +SKIP
    True
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import sys
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import ignite.distributed as idist
import torch
from ignite.engine import Engine, Events
from ignite.handlers import Checkpoint
from ignite.utils import manual_seed

from ignite_mnist.augment import random_shift_rotate
from ignite_mnist.config import EXACT_RESUME_SETTINGS, IDENTITY_SETTINGS, TrainConfig, flag_name
from ignite_mnist.data import build_loaders, load_splits
from ignite_mnist.distributed import (
    RankRNGStates,
    broadcast_module,
    check_world,
    launch,
    needs_launch,
    rank_device,
)
from ignite_mnist.engines import amp_dtype, build_optimizer, create_evaluator, create_trainer
from ignite_mnist.errors import CheckpointError, ConfigError, Interrupted, RunDirError, TrainingError
from ignite_mnist.fast import flush_denormals, prepare_model, uses_channels_last
from ignite_mnist.handlers import (
    ConfigState,
    attach_checkpointing,
    attach_early_stopping,
    attach_metrics_log,
    attach_progress,
    attach_signal_checkpoint,
    attach_validation,
    attach_wandb,
    find_latest_checkpoint,
    load_checkpoint,
    resume_from,
    stopped_early,
)
from ignite_mnist.handlers.loss_averages import terminate_on_non_finite_loss
from ignite_mnist.handlers.lr_schedule import attach_lr_schedule
from ignite_mnist.handlers.metrics_log import truncate_metrics_log
from ignite_mnist.models import build_model
from ignite_mnist.plots import write_run_plots
from ignite_mnist.run_dirs import lock_run_dir, set_aside, unwritable

__all__ = [
    "EVAL_BATCH_SIZE",
    "Summary",
    "check_resume_compatible",
    "locate_resume_checkpoint",
    "resolve_device",
    "run",
]

EVAL_BATCH_SIZE = 1000
CHECKPOINT_DIR = "checkpoints"


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
    stopped_early: bool = False
    stopped_epoch: int | None = None
    resumed_from: str | None = None

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


def _write_json(path: Path, values: dict[str, Any]) -> None:
    partial = path.with_name(path.name + ".partial")
    partial.write_text(json.dumps(values, indent=2) + "\n")
    partial.replace(path)


def prepare_run_dir(
    config: TrainConfig, *, resuming: bool = False, held: contextlib.ExitStack | None = None
) -> Path:
    """Create ``<output-dir>/<run-name>/``, lock it for this process and write ``config.json``.

    The lock (see :mod:`ignite_mnist.run_dirs`) stays in ``held`` until that stack closes.
    A directory that already holds a run is refused unless this is a resume of it,
    or ``--overwrite`` moves the old run's files aside; one another process runs in is refused.
    """
    run_dir = Path(config.output_dir) / (config.run_name or default_run_name(config))
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise unwritable(run_dir, error) from None
    if held is not None:
        held.enter_context(lock_run_dir(run_dir))
    if not resuming and (run_dir / "config.json").exists():
        if not config.overwrite:
            raise RunDirError(
                f"{run_dir} already holds a run; resume it with --resume auto, choose another --run-name, "
                "or pass --overwrite to move it aside"
            )
        print(f"--overwrite: moved the previous run in {run_dir} to {set_aside(run_dir)}")
    try:
        _write_json(run_dir / "config.json", config.to_dict())
    except OSError as error:
        raise unwritable(run_dir, error) from None
    return run_dir


def locate_resume_checkpoint(config: TrainConfig) -> Path:
    """The checkpoint ``--resume`` names: a path, or ``auto`` for the newest of the run.

    With ``auto`` and no ``--run-name``, the newest run directory in ``--output-dir``
    that holds a checkpoint is used.
    """
    assert config.resume is not None
    if config.resume != "auto":
        return Path(config.resume)  # load_checkpoint says so when it is missing
    output = Path(config.output_dir)
    if config.run_name is not None:
        run_dirs = [output / config.run_name]
    else:
        run_dirs = sorted((d for d in output.glob("*") if d.is_dir()), key=lambda d: d.stat().st_mtime, reverse=True)
    for run_dir in run_dirs:
        latest = find_latest_checkpoint(run_dir / CHECKPOINT_DIR)
        if latest is not None:
            return latest
    where = run_dirs[0] if config.run_name is not None else output
    raise CheckpointError(f"no checkpoint to resume in {where}; start without --resume or check --output-dir/--run-name")


def check_resume_compatible(saved: dict[str, Any], config: TrainConfig) -> None:
    """Refuse a resume that would be another experiment or not an exact continuation."""
    for name in IDENTITY_SETTINGS:
        if saved.get(name) != getattr(config, name):
            raise CheckpointError(
                f"checkpoint is for {name} {saved.get(name)!r}, not {getattr(config, name)!r}; "
                f"resume with {flag_name(name)} {saved.get(name)} or start a new run"
            )
    changed = [n for n in EXACT_RESUME_SETTINGS if n in saved and saved[n] != getattr(config, n)]
    if changed and not config.allow_config_change:
        details = ", ".join(f"{flag_name(n)} {saved[n]} -> {getattr(config, n)}" for n in changed)
        raise ConfigError(
            flag_name(changed[0]),
            f"differs from the checkpoint ({details}); an exact resume needs the same values "
            "(pass --allow-config-change to continue anyway)",
        )


def config_for_resume(config: TrainConfig, explicit: set[str]) -> TrainConfig:
    """The settings of a resumed run: the checkpoint's, overridden by flags given explicitly.

    A checkpoint in ``<run>/checkpoints/`` continues that run; given another
    ``--run-name``/``--output-dir``, or a checkpoint kept outside a run, a new run
    starts from it in the directory those flags name.

    Example:
        >>> config_for_resume(TrainConfig(resume="auto", run_name="a"), {"resume", "run_name"})  # doctest: +SKIP
    """
    path = locate_resume_checkpoint(config)
    saved = load_checkpoint(path)["config"]
    values = {k: v for k, v in saved.items() if k in {f.name for f in dataclasses.fields(TrainConfig)}}
    values.update({name: getattr(config, name) for name in explicit})
    values.update(resume=str(path), overwrite=config.overwrite)
    values.update(output_dir=config.output_dir, run_name=config.run_name)  # a new run, unless...
    if path.parent.name == CHECKPOINT_DIR:  # ...the checkpoint's own run goes on, unless flags name another
        run_dir = path.parent.parent
        values.update(output_dir=str(run_dir.parent), run_name=run_dir.name)
        values.update({name: getattr(config, name) for name in explicit & {"output_dir", "run_name"}})
    return TrainConfig(**values)


def _resumes_in_place(config: TrainConfig, checkpoint_path: Path) -> bool:
    """Whether ``--resume`` continues the checkpoint's own run (else a new run starts from the checkpoint)."""
    if config.run_name is None:
        return False
    own = Path(config.output_dir) / config.run_name / CHECKPOINT_DIR
    return checkpoint_path.resolve().parent == own.resolve()


def _apply_changed_settings(optimizer: torch.optim.Optimizer, saved: dict[str, Any], config: TrainConfig) -> None:
    """After loading the optimizer's state, give it the lr/momentum/weight decay ``--allow-config-change`` set."""
    for name in ("lr", "momentum", "weight_decay"):
        if saved.get(name) != getattr(config, name):
            for group in optimizer.param_groups:
                if name in group:
                    group[name] = getattr(config, name)


def _last_good(checkpoint_dir: Path) -> str:
    latest = find_latest_checkpoint(checkpoint_dir)
    if latest is None:
        return "No checkpoint was saved before; start again with a lower --lr"
    return (f"The last good checkpoint is {latest}; continue from it with a lower --lr: "
            f"--resume {latest} --lr LR --allow-config-change")


def _samples_seen(iteration: int, epoch_length: int, num_samples: int, batch_size: int) -> int:
    full_epochs, rest = divmod(iteration, epoch_length)
    return full_epochs * num_samples + min(rest * batch_size, num_samples)


def _interrupted_message(stop: Any, trainer: Engine, run_dir: Path) -> str:
    return (
        f"interrupted by {stop.received.name} at iteration {trainer.state.iteration} "
        f"(epoch {trainer.state.epoch}); checkpoint saved to {stop.saved_to}; resume with: "
        f"ignite-mnist --resume auto --output-dir {run_dir.parent} --run-name {run_dir.name}"
    )


def run(config: TrainConfig) -> Summary:
    """Train, validate and test as ``config`` says; write the run directory; return the summary.

    Raises:
        IgniteMnistError: a user-fixable problem (bad setting, data, checkpoint, run dir);
            :class:`~ignite_mnist.errors.Interrupted` after a signal saved a checkpoint;
            :class:`~ignite_mnist.errors.TrainingError` when the loss stops being finite.
    """
    with contextlib.ExitStack() as held:  # holds the run directory's lock until the run ends, however it ends
        return _run(config, held)


def _run(config: TrainConfig, held: contextlib.ExitStack) -> Summary:
    config.validate()
    if needs_launch(config):  # --nproc-per-node N or torchrun: run this function on every rank
        return launch(run, config)
    check_world(config)
    rank, world_size = idist.get_rank(), idist.get_world_size()
    device = rank_device(resolve_device(config.device))
    resume_path = locate_resume_checkpoint(config) if config.resume else None
    checkpoint = load_checkpoint(resume_path) if resume_path else None
    if checkpoint is not None:
        check_resume_compatible(checkpoint["config"], config)
    in_place = resume_path is not None and _resumes_in_place(config, resume_path)
    with idist.one_rank_first(local=True):  # one process per machine unpacks or downloads the files
        splits = load_splits(config.data_dir, config.dataset, val_size=config.val_size, seed=config.seed)
    # rank 0 creates the run directory (its name may hold the time) and tells the others
    run_dir = Path(idist.broadcast(
        str(prepare_run_dir(config, resuming=in_place, held=held)) if rank == 0 else None, safe_mode=True
    ))
    manual_seed(config.seed + rank)

    spec = splits.spec
    train_loader, val_loader, test_loader = build_loaders(  # --batch-size is global: each rank takes its share
        splits, batch_size=config.batch_size // world_size, seed=config.seed, device=device,
        eval_batch_size=EVAL_BATCH_SIZE, rank=rank, world_size=world_size,
        loader=config.loader, root=config.data_dir, num_workers=config.num_workers,
        transform=random_shift_rotate if config.augment else None,
    )

    model = build_model(config.model, len(spec.classes)).to(device)
    optimizer = build_optimizer(
        config.optimizer, model.parameters(), lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay
    )
    # DistributedDataParallel (averages gradients) for several processes; evaluation uses the plain model
    trainer = create_trainer(
        prepare_model(idist.auto_model(model) if world_size > 1 else model, device, compile=config.compile),
        optimizer, device=device, amp=config.amp, channels_last=uses_channels_last(model, device),
    )
    if config.amp and amp_dtype(device) is None and rank == 0:
        print("ignite-mnist: note: --amp: this CPU has no bfloat16 instructions, so training stays in float32 "
              "(emulated bfloat16 autocast is ~3.5x slower)", file=sys.stderr, flush=True)
    scheduler = attach_lr_schedule(
        trainer, optimizer, config.lr_schedule, lr=config.lr, total_iterations=config.epochs * len(train_loader)
    )
    if device.type == "cpu":
        held.enter_context(flush_denormals())  # denormal floats slow the tutorial MLP down ~3x on CPU
    evaluator = create_evaluator(model, device)

    # Ignite's TerminateOnNan, cheaper for a scalar loss; the TrainingError below reports it, in one line
    trainer.add_event_handler(Events.ITERATION_COMPLETED, terminate_on_non_finite_loss)
    attach_validation(trainer, evaluator, val_loader, every=config.val_every,
                      every_iterations=config.val_every_iterations)
    stopper = None
    if config.patience is not None:
        stopper = attach_early_stopping(
            trainer, patience=config.patience, monitor=config.monitor, min_delta=config.min_delta,
            every=config.val_every,
        )
    if rank == 0:  # files, progress and W&B come from rank 0 only
        attach_metrics_log(trainer, run_dir / "metrics.jsonl", optimizer)
    tracker = attach_wandb(  # before checkpointing, so a saved checkpoint holds this validation's best
        trainer, optimizer=optimizer, evaluators={"val": evaluator}, model=model, config=config.to_dict(),
        mode=config.wandb_mode, project=config.wandb_project, entity=config.wandb_entity, name=config.wandb_name,
        tags=config.wandb_tags, dir=run_dir, log_every=config.wandb_log_every, watch=config.wandb_watch,
        run_id=checkpoint["wandb"]["run_id"] if in_place and "wandb" in checkpoint else None,  # same run, same W&B run
    )
    to_save: dict[str, Any] = {
        "model": model, "optimizer": optimizer, "trainer": trainer, "rng": RankRNGStates(),
        "train_loader": train_loader, "config": ConfigState(config.to_dict()), "wandb": tracker,
    }
    if scheduler is not None:
        to_save["lr_scheduler"] = scheduler
    if stopper is not None:
        to_save["early_stopping"] = stopper
    checkpoints = attach_checkpointing(
        trainer, to_save, run_dir / CHECKPOINT_DIR, evaluator=evaluator,
        score_name=config.monitor.removeprefix("val_"), score_mode="min" if config.monitor == "val_loss" else "max",
        keep_best=config.keep_best, every_iterations=config.checkpoint_every,
    )
    attach_progress(trainer, {"validation": evaluator}, mode=config.progress if rank == 0 else "none",
                    interval=config.progress_interval, metric_names=["loss"])
    stop = attach_signal_checkpoint(trainer, checkpoints.save_now)

    best_val_accuracy: float | None = None

    def track_best(engine: Engine) -> None:
        nonlocal best_val_accuracy
        value = engine.state.metrics.get("val_accuracy")
        if value is not None and getattr(engine.state, "validated_at", None) == engine.state.iteration:
            best_val_accuracy = float(value) if best_val_accuracy is None else max(best_val_accuracy, float(value))

    trainer.add_event_handler(Events.ITERATION_COMPLETED, track_best)
    trainer.add_event_handler(Events.EPOCH_COMPLETED, track_best)

    start_iteration = 0
    if checkpoint is not None:
        to_load = to_save | ({"checkpointer": checkpoints.last} if in_place else {})  # a new run keeps its own files
        if not in_place:  # nor does it continue the checkpoint's W&B run
            del to_load["wandb"]
        if checkpoint["config"].get("optimizer") != config.optimizer:  # --allow-config-change: start it afresh
            del to_load["optimizer"]
        resume_from(checkpoint, to_load)
        _apply_changed_settings(optimizer, checkpoint["config"], config)
        start_iteration = trainer.state.iteration
        if rank == 0 and in_place:
            best_val_accuracy = _best_val_accuracy(run_dir / "metrics.jsonl", start_iteration)
            truncate_metrics_log(run_dir / "metrics.jsonl", start_iteration)
    finished = checkpoint is not None and (
        start_iteration >= len(train_loader) * config.epochs or stopped_early(stopper)
    )

    started = time.perf_counter()
    if finished and rank == 0:
        print(f"{run_dir} already finished at epoch {trainer.state.epoch}; nothing to train")
    elif not finished:
        trainer.run(train_loader, max_epochs=config.epochs)
    train_seconds = time.perf_counter() - started

    if stop.received is not None:
        tracker.finish(exit_code=128 + int(stop.received))
        raise Interrupted(_interrupted_message(stop, trainer, run_dir), int(stop.received))
    output = trainer.state.output
    if isinstance(output, torch.Tensor) and not bool(torch.isfinite(output).all()):
        tracker.finish(exit_code=1)
        raise TrainingError(
            f"loss became {output.item()} at iteration {trainer.state.iteration} (epoch {trainer.state.epoch}); "
            f"stopped. {_last_good(run_dir / CHECKPOINT_DIR)}"
        )

    best_path = checkpoints.best_path
    if best_path is not None:
        if rank == 0:  # only rank 0 wrote it; the others get the weights from rank 0
            Checkpoint.load_objects({"model": model}, load_checkpoint(best_path))
        broadcast_module(model)
    tester = create_evaluator(model, device, num_classes=len(spec.classes), confusion_matrix=True)
    tracker.attach_test_report(tester, class_names=spec.classes)
    test_metrics = tester.run(test_loader).metrics
    rank_batch = config.batch_size // world_size
    samples = _samples_seen(trainer.state.iteration, len(train_loader), train_loader.num_samples, rank_batch)
    samples -= _samples_seen(start_iteration, len(train_loader), train_loader.num_samples, rank_batch)
    samples *= world_size
    summary = Summary(
        run_dir=str(run_dir),
        test_accuracy=float(test_metrics["accuracy"]),
        test_loss=float(test_metrics["loss"]),
        best_val_accuracy=best_val_accuracy,
        epochs_completed=trainer.state.epoch,
        train_seconds=round(train_seconds, 3),
        samples_per_second=round(samples / train_seconds, 1) if samples else 0.0,
        best_checkpoint=str(best_path) if best_path is not None else None,
        stopped_early=stopped_early(stopper),
        stopped_epoch=trainer.state.epoch if stopped_early(stopper) else None,
        resumed_from=str(resume_path) if resume_path is not None else None,
    )
    if rank == 0:
        _write_json(run_dir / "summary.json", summary.to_dict())
    if config.plots and rank == 0:
        write_run_plots(run_dir, model, splits.test, spec)
    tracker.log_model(best_path)
    tracker.finish()
    return summary


def _best_val_accuracy(metrics_path: Path, up_to_iteration: int) -> float | None:
    from ignite_mnist.handlers import read_metrics_log

    if not metrics_path.exists():
        return None
    values = [
        row["val_accuracy"] for row in read_metrics_log(metrics_path)
        if row.get("val_accuracy") is not None and row["iteration"] <= up_to_iteration
    ]
    return max(values) if values else None
