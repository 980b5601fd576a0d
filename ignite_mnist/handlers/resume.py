"""Continue a trainer from its newest checkpoint in one call: :func:`resume_training`, the one restore path.

The managed run (``--resume``) and a hand-written trainer both restore through it,
so both get the same guards:

* what is restored is the trainer's :func:`~ignite_mnist.handlers.resumable_state`:
  the trainer, RNG states, the data's position, every handler of this project and
  the objects named in :func:`~ignite_mnist.handlers.attach_checkpointing`; a
  checkpoint read from another folder than the one the trainer's checkpoints go to
  starts a new run from it: the checkpoint handlers' rotation and the trackers' runs
  are then not taken over;
* a checkpoint whose epochs are not as long as ``data``'s is refused before anything
  is restored (Ignite takes the saved length as it is: a crafted one makes an epoch endless);
* a run that had already finished (its trainer at ``max_epochs``, or stopped early) is
  reported as such (:attr:`Resumed.finished`) and nothing on disk changes; a
  ``trainer.run`` that would start it over is refused;
* temporaries of saves a kill cut short are removed from the checkpoint folder;
* when the trainer starts, the metrics log forgets the rows written after the checkpoint (they are
  written again).

Which checkpoint ``--resume`` means for a managed run is :mod:`ignite_mnist.training.resume`.

Example:
    >>> import tempfile
    >>> import torch
    >>> from ignite.engine import Engine
    >>> from ignite_mnist.handlers import attach_checkpointing
    >>> folder = Path(tempfile.mkdtemp())
    >>> def trained(epochs):
    ...     trainer = Engine(lambda engine, batch: None)
    ...     _ = attach_checkpointing(trainer, folder, {"model": torch.nn.Linear(2, 2)})
    ...     resumed = resume_training(folder, trainer, max_epochs=epochs)
    ...     if resumed is None or not resumed.finished:
    ...         trainer.run(range(3), max_epochs=epochs)
    ...     return resumed
    >>> print(trained(1))
    None
    >>> print(trained(2))  # doctest: +ELLIPSIS
    resumed from .../last_checkpoint_3.pt at iteration 3 (epoch 1); restored trainer, rng, model, ..., checkpointer
    >>> again = trained(2)  # finished: nothing is trained and no file changes
    >>> again.finished, again.path.name, again.epoch
    (True, 'last_checkpoint_6.pt', 2)
"""

from __future__ import annotations

import os
from collections.abc import Collection, Mapping, Sized
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ignite.engine import Engine

from ignite_mnist.console import say
from ignite_mnist.errors import CheckpointError
from ignite_mnist.handlers.state import ResumableState, resumable_state
from ignite_mnist.runtime.distributed import is_rank_zero
from ignite_mnist.storage.checkpoint_files import checkpoint_iteration, remove_stray_temporaries
from ignite_mnist.storage.checkpoints import load_checkpoint, newest_intact_checkpoint
from ignite_mnist.storage.run_dir import RunDir

__all__ = ["Resumed", "SavedCheckpoint", "find_checkpoint", "resume_training"]


@dataclass
class SavedCheckpoint:
    """A checkpoint file, read once (:func:`~ignite_mnist.storage.checkpoints.load_checkpoint`).

    Attributes:
        path: the file.
        contents: what it holds, by entry name.
    """

    path: Path
    contents: dict[str, Any]

    @classmethod
    def read(cls, path: str | Path) -> SavedCheckpoint:
        """Read ``path`` (raises :class:`~ignite_mnist.errors.CheckpointError` when it is unusable)."""
        return cls(Path(path), load_checkpoint(path))

    @property
    def trainer_state(self) -> Mapping[str, Any]:
        trainer = self.contents.get("trainer")
        return trainer if isinstance(trainer, Mapping) else {}

    @property
    def iteration(self) -> int:
        """The trainer iteration the checkpoint was taken at."""
        iteration = self.trainer_state.get("iteration")
        return iteration if isinstance(iteration, int) else checkpoint_iteration(self.path) or 0

    @property
    def epoch_length(self) -> int | None:
        """Iterations per epoch of the trainer that wrote it."""
        length = self.trainer_state.get("epoch_length")
        return length if isinstance(length, int) and length > 0 else None


@dataclass
class Resumed:
    """What :func:`resume_training` restored, and from where.

    Attributes:
        finished: the run had already finished (at ``max_epochs``, or stopped early): nothing to train.
        in_place: the run goes on in the checkpoint's own folder (else a new run starts from it).
    """

    path: Path
    iteration: int
    epoch: int
    restored: list[str]
    finished: bool = False
    in_place: bool = True
    removed: list[Path] = field(default_factory=list)

    def __str__(self) -> str:
        if self.finished:
            return (f"{self.path}: this run already finished at epoch {self.epoch} (iteration {self.iteration}); "
                    "nothing to train")
        return (f"resumed from {self.path} at iteration {self.iteration} (epoch {self.epoch}); "
                f"restored {', '.join(self.restored)}")


def find_checkpoint(source: str | Path) -> SavedCheckpoint | None:
    """The checkpoint ``source`` means, read: a file as it is; a folder's newest intact "last" checkpoint
    (a run directory's ``checkpoints/``, or the folder itself), with a note for each damaged one skipped."""
    source = Path(source)
    if source.is_file():
        return SavedCheckpoint.read(source)
    folder = RunDir(source).checkpoint_dir if RunDir(source).checkpoint_dir.is_dir() else source
    found = newest_intact_checkpoint(folder)
    if found is None:
        if checkpoint_iteration_files(folder):
            raise CheckpointError(f"no intact checkpoint to resume in {folder} (every last_checkpoint_*.pt is "
                                  "damaged); resume from another file, or start afresh in another folder")
        return None
    path, contents, skipped = found
    for reason in skipped:
        _say_once(f"skipped {reason.split(': ')[0]} ({reason.split(': ', 1)[1]}); using {path.name}")
    return SavedCheckpoint(path, contents)


def checkpoint_iteration_files(folder: Path) -> list[Path]:
    """The "last" checkpoint files of ``folder``, readable or not."""
    return [p for p in folder.iterdir() if checkpoint_iteration(p) is not None] if folder.is_dir() else []


def _say_once(message: str) -> None:
    if is_rank_zero():
        say(message)


def _check_epoch_length(saved: SavedCheckpoint, data: Any) -> None:
    here = len(data) if isinstance(data, Sized) else None
    if saved.epoch_length is not None and here is not None and saved.epoch_length != here:
        raise CheckpointError(f"{saved.path}: its trainer state counts {saved.epoch_length} iterations an epoch, "
                              f"this run's data {here}; the file is damaged or was not written by this run")


def _in_place(state: ResumableState, saved: SavedCheckpoint) -> bool:
    """Whether the checkpoint lies where the trainer's own checkpoints go (no checkpointing: yes)."""
    folder = state.checkpoint_dir
    return folder is None or os.path.realpath(saved.path.parent) == os.path.realpath(folder)


def _finished(state: ResumableState, saved: SavedCheckpoint, max_epochs: int | None) -> bool:
    epochs = max_epochs or saved.trainer_state.get("max_epochs")
    length = saved.epoch_length
    done = isinstance(epochs, int) and length is not None and saved.iteration >= epochs * length
    return done or state.stopped_run()


def _remove_strays(state: ResumableState) -> list[Path]:
    folder = state.checkpoint_dir
    removed = remove_stray_temporaries(folder) if folder is not None and is_rank_zero() else []
    for path in removed:
        say(f"removed {path}, a checkpoint save that was cut short")
    return removed


def resume_training(
    source: str | Path | SavedCheckpoint | None,
    trainer: Engine,
    *,
    max_epochs: int | None = None,
    data: Any = None,
    skip: Collection[str] = (),
) -> Resumed | None:
    """Restore ``trainer``'s resumable state from a checkpoint, before ``trainer.run``; None when there is none yet.

    Call it after the ``attach_*`` calls (an object attached later would start
    afresh: that is refused with a line saying so).

    Args:
        source: a checkpoint file, or a folder: a run directory (its ``checkpoints/``)
            or the folder :func:`~ignite_mnist.handlers.attach_checkpointing` writes to;
            a folder's newest intact "last" checkpoint is used; or a checkpoint already read.
        trainer: the trainer whose handlers and objects are restored (the data's
            position when ``trainer.run`` starts).
        max_epochs: what ``trainer.run`` will be given; a checkpoint at its end is a
            finished run (default: the ``max_epochs`` the checkpoint's trainer had).
        data: what ``trainer.run`` will be given: a checkpoint counting other epochs is refused.
        skip: entries not to restore (an optimizer of another kind: it starts afresh).

    Returns:
        What was restored (:attr:`Resumed.finished` says the run has nothing left to train:
        do not call ``trainer.run``), or None: no checkpoint yet, start afresh.

    Raises:
        CheckpointError: the file is unusable, or lacks an object the trainer saves.
    """
    state = resumable_state(trainer)
    saved = source if isinstance(source, SavedCheckpoint) or source is None else find_checkpoint(source)
    if saved is None:
        _remove_strays(state)
        return None
    _check_epoch_length(saved, data)
    in_place = _in_place(state, saved)
    restored = state.restore(saved.contents, saved.path, in_place=in_place, skip=skip)
    finished = _finished(state, saved, max_epochs)
    removed = _remove_strays(state) if in_place else []
    length = saved.epoch_length
    epoch = -(-saved.iteration // length) if length else int(saved.trainer_state.get("epoch") or 0)  # in progress
    return Resumed(saved.path, saved.iteration, epoch, restored, finished, in_place, removed)
