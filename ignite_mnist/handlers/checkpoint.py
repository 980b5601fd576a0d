"""Checkpoints that resume exactly: best-k by score, a rotating "last", and the loading side.

Ignite supplies the mechanism: :class:`ignite.handlers.Checkpoint` picks what to
keep and :class:`ignite.handlers.DiskSaver` writes atomically (temporary file,
then ``os.replace``); :meth:`Checkpoint.load_objects` restores. Added here:

* the objects an exact resume needs besides model and optimizer: every RNG state
  (:class:`RNGStates`), the data loader's position in its epoch, the config;
* a "last" checkpoint that keeps the two newest files, so a crash while one is
  written (Ignite removes the old file before writing the new) never leaves the
  run without an intact checkpoint;
* safe loading (``weights_only=True``) with one-line errors, and finding the
  newest checkpoint of a run (``--resume auto``).

Files, in ``<run_dir>/checkpoints/``:
``last_checkpoint_<iteration>.pt`` and ``best_checkpoint_<iteration>_<score_name>=<score>.pt``.
Each is a plain dict of tensors and Python values: ``model``, ``optimizer``,
``trainer``, ``rng``, ``train_loader``, ``config`` and whatever else was in ``to_save``.

Example:
    >>> to_save = {"model": model, "optimizer": optimizer, "trainer": trainer, "rng": RNGStates()}  # doctest: +SKIP
    >>> handlers = attach_checkpointing(trainer, to_save, "runs/demo/checkpoints",
    ...                                 evaluator=evaluator, score_name="accuracy")  # doctest: +SKIP
    >>> resume_from(find_latest_checkpoint("runs/demo/checkpoints"), to_save)  # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import pickle
import random
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from ignite.engine import Engine, Events
from ignite.handlers import Checkpoint, DiskSaver, global_step_from_engine

from ignite_mnist.errors import CheckpointError

__all__ = [
    "BEST_PREFIX",
    "LAST_PREFIX",
    "CheckpointHandlers",
    "ConfigState",
    "RNGStates",
    "attach_checkpointing",
    "checkpoint_iteration",
    "find_latest_checkpoint",
    "load_checkpoint",
    "resume_from",
]

LAST_PREFIX = "last"
BEST_PREFIX = "best"
#: Bookkeeping a checkpoint may lack (a best-k file has no "last" handler state, a run without W&B state) or that is never loaded.
_OPTIONAL_KEYS = {"config", "checkpointer", "best_checkpointer", "wandb"}
_LAST_PATTERN = re.compile(rf"^{LAST_PREFIX}_checkpoint_(\d+)\.pt$")
_REFUSED_GLOBAL = re.compile(r"Unsupported global: GLOBAL ([\w.]+)")


class RNGStates:
    """Every random generator in play, as a checkpointable object.

    Covers torch's CPU generator, every initialised CUDA device, Python's ``random``
    and NumPy's global generator (its key array stored as a tensor, so the
    checkpoint stays loadable with ``weights_only=True``).

    Example:
        >>> states = RNGStates().state_dict()
        >>> torch.rand(1).item() == (RNGStates().load_state_dict(states) or torch.rand(1).item())
        False
    """

    def state_dict(self) -> dict[str, Any]:
        kind, keys, position, has_gauss, cached = np.random.get_state(legacy=True)
        return {
            "torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else [],
            "python": random.getstate(),
            "numpy": {
                "kind": kind, "keys": torch.from_numpy(keys.astype(np.int64)), "position": int(position),
                "has_gauss": int(has_gauss), "cached_gaussian": float(cached),
            },
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        torch.set_rng_state(state["torch"])
        if state["cuda"] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["cuda"])
        version, internal, gauss = state["python"]
        random.setstate((version, tuple(internal), gauss))
        numpy = state["numpy"]
        np.random.set_state(
            (numpy["kind"], numpy["keys"].numpy().astype(np.uint32), numpy["position"], numpy["has_gauss"],
             numpy["cached_gaussian"])
        )


class ConfigState:
    """A plain settings dict as a checkpointable object (saved, never loaded back over the run's config)."""

    def __init__(self, values: Mapping[str, Any]) -> None:
        self.values = dict(values)

    def state_dict(self) -> dict[str, Any]:
        return dict(self.values)

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Checkpoint configs are compared by the caller, not applied."""


@dataclass
class CheckpointHandlers:
    """What :func:`attach_checkpointing` attached: Ignite ``Checkpoint`` objects."""

    last: Checkpoint
    best: Checkpoint | None

    def save_now(self, trainer: Engine) -> Path:
        """Write a "last" checkpoint of the trainer's current state (used on signals)."""
        _save_or_explain(trainer, self.last)
        return self.latest_path

    @property
    def latest_path(self) -> Path:
        return Path(self.last.save_handler.dirname) / self.last.last_checkpoint  # type: ignore[attr-defined]

    @property
    def best_path(self) -> Path | None:
        if self.best is None or self.best.last_checkpoint is None:
            return None
        best_item = max(self.best._saved, key=lambda item: item.priority)
        return Path(self.best.save_handler.dirname) / best_item.filename  # type: ignore[attr-defined]


class _DiskSaver(DiskSaver):
    """Ignite's ``DiskSaver``, for which removing a file that is already gone is not an error.

    ``Checkpoint`` deletes the oldest file *before* writing the next; a crash or a
    full disk in between leaves the saved bookkeeping naming a deleted file, which
    the resumed run would otherwise fail to remove.
    """

    def remove(self, filename: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            super().remove(filename)


def _save_or_explain(engine: Engine, checkpoint: Checkpoint) -> None:
    """Run an Ignite ``Checkpoint`` on ``engine``; turn a failed write (disk full, read-only) into a one-line error.

    ``DiskSaver(atomic=True)`` writes a temporary file and renames it, so a failed
    write leaves every earlier checkpoint complete; the message names the newest.

    Raises:
        CheckpointError: the write failed; the run cannot go on safely.
    """
    try:
        checkpoint(engine)
    except (OSError, RuntimeError) as raised:
        # torch's zip writer turns a failed write into a RuntimeError; the OSError is its context
        error = raised if isinstance(raised, OSError) else raised.__context__
        if not isinstance(error, OSError):
            raise
        dirname = Path(checkpoint.save_handler.dirname)  # type: ignore[attr-defined]
        latest = find_latest_checkpoint(dirname)
        kept = f"the newest intact one is {latest}" if latest is not None else "no earlier checkpoint exists"
        raise CheckpointError(
            f"cannot write a checkpoint to {dirname} ({error.strerror or error}); {kept}. "
            "Free space (or fix the folder) and continue with --resume auto"
        ) from None


def _loss_is_finite(engine: Engine) -> bool:
    output = engine.state.output
    if isinstance(output, torch.Tensor):
        return bool(torch.isfinite(output).all())
    return output is None or not isinstance(output, float) or np.isfinite(output)


def attach_checkpointing(
    trainer: Engine,
    to_save: dict[str, Any],
    dirname: str | Path,
    *,
    evaluator: Engine | None = None,
    score_name: str = "accuracy",
    score_mode: str = "max",
    keep_best: int = 2,
    every_iterations: int | None = None,
) -> CheckpointHandlers:
    """Save resumable checkpoints of ``to_save`` during ``trainer``'s run.

    * "last": after every epoch and every ``every_iterations`` iterations; the two
      newest files are kept. Skipped while the loss is NaN/inf, so the last good
      state survives a divergence.
    * "best": when ``evaluator`` completes, if its ``state.metrics[score_name]`` is
      among the ``keep_best`` best so far (``score_mode`` ``max`` or ``min``).

    The handlers' own bookkeeping is saved too, so a resumed run keeps rotating
    the same files. Add ``"trainer": trainer`` to ``to_save`` to make it resumable.

    Returns:
        The attached :class:`CheckpointHandlers`.
    """
    if score_mode not in ("max", "min"):
        raise ValueError(f"score_mode must be 'max' or 'min', got {score_mode!r}")
    if keep_best <= 0:
        raise ValueError(f"keep_best must be > 0, got {keep_best}")
    if every_iterations is not None and every_iterations <= 0:
        raise ValueError(f"every_iterations must be > 0 or None, got {every_iterations}")
    saver = _DiskSaver(str(dirname), require_empty=False, atomic=True, create_dir=True)
    iteration_step = global_step_from_engine(trainer, Events.ITERATION_COMPLETED)
    to_save = dict(to_save)

    best = None
    if evaluator is not None:
        sign = 1.0 if score_mode == "max" else -1.0
        best = Checkpoint(
            to_save, saver, filename_prefix=BEST_PREFIX, n_saved=keep_best,
            score_function=lambda engine: sign * float(engine.state.metrics[score_name]),
            score_name=score_name, global_step_transform=iteration_step,
        )
        to_save["best_checkpointer"] = best
        evaluator.add_event_handler(Events.COMPLETED, _save_or_explain, best)

    last = Checkpoint(
        to_save, saver, filename_prefix=LAST_PREFIX, n_saved=2, include_self=True,
        global_step_transform=iteration_step,
    )

    def save_last(engine: Engine) -> None:
        if _loss_is_finite(engine):
            _save_or_explain(engine, last)

    trainer.add_event_handler(Events.EPOCH_COMPLETED, save_last)
    if every_iterations is not None:
        trainer.add_event_handler(
            Events.ITERATION_COMPLETED(
                event_filter=lambda engine, it: it % every_iterations == 0 and it % engine.state.epoch_length != 0
            ),
            save_last,
        )
    return CheckpointHandlers(last=last, best=best)


def _corrupted(path: Path, error: Exception) -> str:
    return f"{path}: corrupted or truncated checkpoint ({type(error).__name__}); use another checkpoint of the run"


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Read a checkpoint safely (``weights_only=True``: no code from the file runs).

    Raises:
        CheckpointError: the file is missing, truncated/corrupted, carries
            pickled code, or is not an ignite-mnist checkpoint.

    Example:
        >>> load_checkpoint("runs/demo/checkpoints/last_checkpoint_3438.pt")["config"]["model"]  # doctest: +SKIP
        'mlp'
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file; check the path or use --resume auto")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        # torch's weights-only unpickler names the first global it refused ("Unsupported global: GLOBAL exec")
        refused = _REFUSED_GLOBAL.search(str(error))
        if refused is None:  # not a pickle of objects at all: damaged bytes
            raise CheckpointError(_corrupted(path, error)) from None
        raise CheckpointError(
            f"{path}: refused to load: the file holds objects other than tensors and plain values "
            f"({refused.group(1)}), which could run code; load only checkpoints written by ignite-mnist"
        ) from None
    except Exception as error:  # a damaged file fails anywhere in the reader: zip, pickle, storage sizes
        raise CheckpointError(_corrupted(path, error)) from None
    if not isinstance(checkpoint, dict) or "model" not in checkpoint or "config" not in checkpoint:
        raise CheckpointError(f"{path}: not an ignite-mnist checkpoint (no model and config inside)")
    return checkpoint


def checkpoint_iteration(path: str | Path) -> int | None:
    """The trainer iteration in a "last" checkpoint's file name, or None for other names."""
    match = _LAST_PATTERN.match(Path(path).name)
    return int(match.group(1)) if match else None


def find_latest_checkpoint(dirname: str | Path) -> Path | None:
    """The newest "last" checkpoint in ``dirname`` (highest iteration), or None."""
    dirname = Path(dirname)
    if not dirname.is_dir():
        return None
    candidates = [(checkpoint_iteration(p), p) for p in dirname.iterdir()]
    candidates = [(it, p) for it, p in candidates if it is not None]
    return max(candidates)[1] if candidates else None


def resume_from(checkpoint: Mapping[str, Any], to_load: Mapping[str, Any]) -> None:
    """Restore every object of ``to_load`` found in ``checkpoint`` (Ignite's ``Checkpoint.load_objects``).

    The saving handlers' own state (``checkpointer``, ``best_checkpointer``) is
    restored when present; ``config`` is never loaded over the current config.
    """
    wanted = {k: v for k, v in to_load.items() if k != "config" and k in checkpoint}
    missing = sorted(set(to_load) - set(checkpoint) - _OPTIONAL_KEYS)
    if missing:
        raise CheckpointError(f"checkpoint lacks {', '.join(missing)}; it was not written by this kind of run")
    Checkpoint.load_objects(wanted, dict(checkpoint))
