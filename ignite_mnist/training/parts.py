"""Phase 1 of a run: build its parts from the config: run directory, data, model, optimizer, engines.

Nothing is attached to the engines here (that is :mod:`ignite_mnist.training.wiring`) and
nothing is restored (that is :mod:`ignite_mnist.training.resume`). In a distributed run
every rank builds its own parts: its shard of the data, the model wrapped in
``DistributedDataParallel`` for training; rank 0 creates the run directory.

Example:
    >>> config = TrainConfig(data_dir=data_dir, output_dir=runs, run_name="parts", val_size=200)
    >>> with contextlib.ExitStack() as held:
    ...     parts = build_parts(config, None, held)
    >>> type(parts.model).__name__, len(parts.train_loader), parts.run_dir.config_file.is_file()
    ('TutorialMLP', 32, True)
"""

from __future__ import annotations

import contextlib
import dataclasses
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, cast

import ignite.distributed as idist
import torch
from ignite.engine import Engine
from ignite.utils import manual_seed
from torch import nn

from ignite_mnist.console import note, say
from ignite_mnist.data import Dataset, LoaderOptions, Splits, build_loaders, load_splits
from ignite_mnist.data.augment import random_shift_rotate
from ignite_mnist.engines import create_evaluator, create_trainer, make_grad_scaler, training_loss
from ignite_mnist.errors import RunDirError, WriteError
from ignite_mnist.models import build_model, model_factory
from ignite_mnist.optim import build_optimizer
from ignite_mnist.registry import THREADS_AUTO
from ignite_mnist.runtime.devices import amp_dtype, resolve_device
from ignite_mnist.runtime.distributed import check_world, is_rank_zero, rank_device
from ignite_mnist.runtime.fast import flush_denormals, prepare_model, uses_channels_last
from ignite_mnist.runtime.threads import ThreadChoice, choose_threads, choose_threads_for, using_threads
from ignite_mnist.settings.config import TrainConfig, tracker_settings_classes
from ignite_mnist.storage.files import ANY
from ignite_mnist.storage.run_dir import RunDir, unwritable
from ignite_mnist.training.resume import ResumePlan

__all__ = ["EVAL_BATCH_SIZE", "RunParts", "build_parts", "default_run_name", "open_run_dir", "write_config"]

#: Batch size of validation and test (memory only; the metrics do not depend on it).
EVAL_BATCH_SIZE = 1000


@dataclass
class RunParts:
    """Everything a run builds before handlers are attached."""

    config: TrainConfig
    run_dir: RunDir
    device: torch.device
    spec: Dataset
    train_loader: Any
    val_loader: Any
    test_loader: Any
    model: nn.Module
    optimizer: torch.optim.Optimizer
    scaler: torch.amp.GradScaler | None
    trainer: Engine
    evaluator: Engine

    @property
    def world_size(self) -> int:
        return idist.get_world_size()


def default_run_name(config: TrainConfig) -> str:
    return f"{config.dataset}-{config.model}-{datetime.now():%Y%m%d-%H%M%S}"


def open_run_dir(config: TrainConfig, *, resuming: bool, held: contextlib.ExitStack) -> RunDir:
    """Create ``<output-dir>/<run-name>/``, lock it until ``held`` closes, and write ``config.json`` for a new run.

    A folder that already holds a run is refused unless this is a resume of it,
    or ``--overwrite`` moves the old run's files aside; one another process runs in
    is refused, and so is a folder whose own names (``metrics.jsonl``, ``checkpoints/``, the trackers'
    ``wandb/``, ``mlflow.db`` ...) hold a link, a pipe or a device. A resumed run rewrites its ``config.json``
    once its checkpoint is restored (:func:`ignite_mnist.training.managed.restore`), so a refused resume changes
    nothing.
    """
    run_dir = RunDir(Path(config.output_dir) / (config.run_name or default_run_name(config)))
    try:
        run_dir.path.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise unwritable(run_dir.path, error) from None
    held.enter_context(run_dir.lock())
    if not resuming and run_dir.holds_run():
        if run_dir.holds_checkpoints() and not config.overwrite:
            raise RunDirError(
                f"{run_dir} already holds a run; resume it with --resume auto, choose another --run-name, "
                "or pass --overwrite to move it aside"
            )
        why = "--overwrite" if config.overwrite else "it had saved no checkpoint, so it starts afresh"
        say(f"{run_dir}: {why}; the previous run's files were moved to {run_dir.set_aside()}")
    run_dir.check_entries(dict.fromkeys(tracker_files(), ANY))  # nothing written through a planted link
    if not resuming:
        write_config(run_dir, config)
    return run_dir


def tracker_files() -> list[str]:
    """The names (and patterns) every tracker keeps in a run directory (its settings' ``FILES``)."""
    return [name for settings in tracker_settings_classes().values() for name in settings.FILES]


def write_config(run_dir: RunDir, config: TrainConfig) -> None:
    """Write ``config.json``; a folder that cannot be written is one line."""
    try:
        run_dir.write_config(config.to_dict())
    except (OSError, WriteError) as error:
        raise unwritable(run_dir.path, error if isinstance(error, OSError) else OSError(error.reason)) from None


def _shared_run_dir(config: TrainConfig, plan: ResumePlan | None, held: contextlib.ExitStack) -> RunDir:
    """Rank 0 opens the run directory (its name may hold the time) and tells the others."""
    resuming = plan is not None and plan.in_place
    path = str(open_run_dir(config, resuming=resuming, held=held).path) if is_rank_zero() else None
    return RunDir(cast(str, idist.broadcast(path, safe_mode=True)))


def _build_model_and_optimizer(config: TrainConfig, spec: Dataset, device: torch.device) -> tuple[Any, Any]:
    model = build_model(config.model, len(spec.classes)).to(device)
    optimizer = build_optimizer(
        config.optimizer, model.parameters(), lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay
    )
    return model, optimizer


def _choose_threads(config: TrainConfig, splits: Splits, device: torch.device) -> ThreadChoice | None:
    """The CPU thread count of a one-process CPU run (``--threads``); None where it does not apply
    (CUDA computes on the GPU; several processes share the cores out as torchrun does)."""
    if device.type != "cpu" or idist.get_world_size() > 1:
        return None
    if config.threads != THREADS_AUTO:
        return choose_threads(config.threads, probe=None)
    with torch.random.fork_rng(devices=[]):  # the probe's own weights: the run's random numbers stay untouched
        model, optimizer = _build_model_and_optimizer(config, splits.spec, device)
        prepare_model(model, device)
        images, labels = (tensor[: config.batch_size] for tensor in splits.train)
        images = images.unsqueeze(1).float().div(255)
        if uses_channels_last(model, device):
            images = images.contiguous(memory_format=torch.channels_last)
        return choose_threads_for(model, optimizer, training_loss(config.label_smoothing), (images, labels))


def build_parts(config: TrainConfig, plan: ResumePlan | None, held: contextlib.ExitStack) -> RunParts:
    """Build this rank's parts of the run ``config`` describes; ``held`` keeps the run-dir lock and CPU settings.

    ``--threads auto`` is resolved here, and the run's config (``parts.config``, ``config.json``) holds the count.
    """
    check_world(config)
    model_factory(config.model)  # a --model path that does not import fails before any data is read
    rank, world_size = idist.get_rank(), idist.get_world_size()
    device = rank_device(resolve_device(config.device))
    # one process per machine unpacks or downloads the files; they are split on one thread, before the thread count
    # is chosen: sorting and gathering them is memory-bound, and at 2 threads on a busy machine it took 0.5 s, not 0.1
    with idist.one_rank_first(local=True), using_threads(1):
        splits = load_splits(config.data_dir, config.dataset, val_size=config.val_size, seed=config.seed)
    threads = _choose_threads(config, splits, device)
    if threads is not None:
        held.enter_context(using_threads(threads.threads))
        config = dataclasses.replace(config, threads=str(threads.threads))
        if threads.measured and is_rank_zero():
            note("info", f"--threads auto chose {threads.threads} ({threads.reason})")
    run_dir = _shared_run_dir(config, plan, held)
    manual_seed(config.seed + rank)
    train_loader, val_loader, test_loader = build_loaders(splits, LoaderOptions(
        batch_size=config.batch_size // world_size, seed=config.seed, device=device,  # --batch-size is global
        eval_batch_size=EVAL_BATCH_SIZE, rank=rank, world_size=world_size,
        loader=config.loader, root=config.data_dir, num_workers=config.num_workers,
        transform=random_shift_rotate if config.augment else None,
    ))
    model, optimizer = _build_model_and_optimizer(config, splits.spec, device)
    scaler = make_grad_scaler(device, config.amp)
    # DistributedDataParallel (averages gradients) for several processes; evaluation uses the plain model
    trainer = create_trainer(
        prepare_model(idist.auto_model(model) if world_size > 1 else model, device, compile=config.compile),
        optimizer, loss_fn=training_loss(config.label_smoothing), device=device, amp=config.amp,
        channels_last=uses_channels_last(model, device), scaler=scaler,
    )
    if config.amp and amp_dtype(device) is None and is_rank_zero():
        note("note", "--amp: this CPU has no bfloat16 instructions, so training stays in float32 "
             "(emulated bfloat16 autocast is ~3.5x slower)")
    if device.type == "cpu":
        held.enter_context(flush_denormals())  # denormal floats slow the tutorial MLP down ~3x on CPU
    return RunParts(config, run_dir, device, splits.spec, train_loader, val_loader, test_loader, model, optimizer,
                    scaler, trainer, create_evaluator(model, device))
