"""Checkpoints that resume exactly: best-k by score and a rotating "last", on Ignite's ``Checkpoint``.

Ignite supplies the mechanism: :class:`ignite.handlers.Checkpoint` picks what to
keep and :class:`ignite.handlers.DiskSaver` writes atomically (temporary file,
then ``os.replace``). Added here:

* a "last" checkpoint that keeps the two newest files, so a crash while one is
  written (Ignite removes the old file before writing the new) never leaves the
  run without an intact checkpoint;
* no checkpoint of weights that are NaN or infinite, so the last good state
  survives a divergence;
* a failed write (disk full, read-only folder) as one line naming the newest intact file.

What goes into the files (RNG states, the config) and how they are read back
is :mod:`ignite_mnist.checkpoints`; file names are ``last_checkpoint_<iteration>.pt``
and ``best_checkpoint_<iteration>_<score_name>=<score>.pt``.

Example:
    >>> import tempfile
    >>> from ignite.engine import Engine
    >>> model = torch.nn.Linear(2, 2)
    >>> trainer = Engine(lambda engine, batch: torch.tensor(0.5))
    >>> folder = Path(tempfile.mkdtemp())
    >>> handlers = attach_checkpointing(trainer, {"model": model, "trainer": trainer}, folder)
    >>> _ = trainer.run(range(4), max_epochs=2)
    >>> sorted(p.name for p in folder.iterdir())
    ['last_checkpoint_4.pt', 'last_checkpoint_8.pt']
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from ignite.engine import Engine, Events
from ignite.handlers import Checkpoint, DiskSaver, global_step_from_engine

from ignite_mnist.checkpoints import BEST_PREFIX, LAST_PREFIX, find_latest_checkpoint
from ignite_mnist.errors import CheckpointError

__all__ = ["CheckpointHandlers", "attach_checkpointing", "finite_weights"]


@dataclass
class CheckpointHandlers:
    """What :func:`attach_checkpointing` attached: Ignite ``Checkpoint`` objects.

    Put ``last`` (as ``"checkpointer"``) into what a resume restores, so the
    resumed run keeps rotating the same files; ``best`` is saved inside every
    checkpoint already (as ``"best_checkpointer"``).
    """

    last: Checkpoint
    best: Checkpoint | None

    def save_now(self, trainer: Engine) -> Path:
        """Write a "last" checkpoint of the trainer's current state (used on signals); return its path."""
        _save_or_explain(trainer, self.last)
        return self.latest_path

    @property
    def latest_path(self) -> Path:
        """The newest "last" checkpoint written (Ignite's ``last_checkpoint`` already includes the folder)."""
        return Path(self.last.last_checkpoint)  # type: ignore[arg-type]

    @property
    def best_path(self) -> Path | None:
        """The best-scoring checkpoint written so far (or restored from a resumed run's bookkeeping)."""
        if self.best is None or not self.best._saved:
            return None
        best_item = max(self.best._saved, key=lambda item: item.priority)
        return Path(self.best.save_handler.dirname) / best_item.filename  # type: ignore[attr-defined]

    def resumable(self) -> dict[str, Checkpoint]:
        """The handlers' own state to restore on resume (``{"checkpointer": ..., "best_checkpointer": ...}``)."""
        return {"checkpointer": self.last} | ({"best_checkpointer": self.best} if self.best is not None else {})


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


def _tensors(value: Any) -> Iterator[torch.Tensor]:
    """The tensors in a module's state, or nested in dicts and lists (a state dict, an optimizer's state)."""
    if isinstance(value, torch.nn.Module):
        value = value.state_dict()
    if isinstance(value, torch.Tensor):
        yield value
    elif isinstance(value, Mapping):
        for item in value.values():
            yield from _tensors(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _tensors(item)


def finite_weights(objects: Mapping[str, Any]) -> bool:
    """Whether every floating-point tensor of the modules and state dicts in ``objects`` is finite.

    Other objects (an optimizer, an engine) are not looked into.

    Example:
        >>> finite_weights({"model": torch.nn.Linear(2, 2), "trainer": object()})
        True
        >>> finite_weights({"model": {"weight": torch.tensor([1.0, float("inf")])}})
        False
    """
    return all(bool(torch.isfinite(t).all()) for t in _tensors(list(objects.values())) if t.is_floating_point())


def _save_last_every(trainer: Engine, last: Checkpoint, to_save: dict[str, Any], iterations: int | None) -> None:
    """Save ``last`` after every epoch and every ``iterations`` iterations, unless the weights are not finite."""

    def save_last(engine: Engine) -> None:
        if finite_weights(to_save):
            _save_or_explain(engine, last)

    trainer.add_event_handler(Events.EPOCH_COMPLETED, save_last)
    if iterations is not None:
        trainer.add_event_handler(
            Events.ITERATION_COMPLETED(
                event_filter=lambda engine, it: it % iterations == 0 and it % engine.state.epoch_length != 0
            ),
            save_last,
        )


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
      newest files are kept. Never while a module's weights are NaN or infinite.
    * "best": when ``evaluator`` completes, if its ``state.metrics[score_name]`` is
      among the ``keep_best`` best so far (``score_mode`` ``max`` or ``min``).

    Add ``"trainer": trainer`` (and the data loader, optimizer, RNG states) to
    ``to_save`` to make the files resumable.

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
    last = Checkpoint(to_save, saver, filename_prefix=LAST_PREFIX, n_saved=2, include_self=True,
                      global_step_transform=iteration_step)
    _save_last_every(trainer, last, to_save, every_iterations)
    return CheckpointHandlers(last=last, best=best)
