"""Continue a hand-written trainer from its newest checkpoint in one call: :func:`resume_training`.

What is restored is the trainer's :func:`~ignite_mnist.handlers.resumable_state`:
the trainer, RNG states, the data's position, every handler of this project and
the objects named in :func:`~ignite_mnist.handlers.attach_checkpointing`. Which
checkpoint a managed run resumes (``--resume``) is :mod:`ignite_mnist.training.resume`.

Example:
    >>> import tempfile
    >>> import torch
    >>> from ignite.engine import Engine
    >>> from ignite_mnist.handlers import attach_checkpointing
    >>> folder = Path(tempfile.mkdtemp())
    >>> def trained(epochs):
    ...     trainer = Engine(lambda engine, batch: None)
    ...     _ = attach_checkpointing(trainer, folder, {"model": torch.nn.Linear(2, 2)})
    ...     resumed = resume_training(folder, trainer)
    ...     trainer.run(range(3), max_epochs=epochs)
    ...     return resumed
    >>> print(trained(1))
    None
    >>> print(trained(2))  # doctest: +ELLIPSIS
    resumed from .../last_checkpoint_3.pt at iteration 3 (epoch 1); restored trainer, rng, model, ..., checkpointer
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ignite.engine import Engine

from ignite_mnist.storage.checkpoints import find_latest_checkpoint, load_checkpoint
from ignite_mnist.handlers.state import resumable_state
from ignite_mnist.training.resume import ResumePlan, rewind_logs
from ignite_mnist.storage.run_dir import RunDir

__all__ = ["Resumed", "resume_training"]


@dataclass
class Resumed:
    """What :func:`resume_training` restored, and from where."""

    path: Path
    iteration: int
    epoch: int
    restored: list[str]

    def __str__(self) -> str:
        return (f"resumed from {self.path} at iteration {self.iteration} (epoch {self.epoch}); "
                f"restored {', '.join(self.restored)}")


def resume_training(source: str | Path, trainer: Engine) -> Resumed | None:
    """Restore ``trainer``'s resumable state from a checkpoint, before ``trainer.run``; None when there is none yet.

    Call it after the ``attach_*`` calls (an object attached later would start
    afresh: that is refused with a line saying so).

    Args:
        source: a checkpoint file, or a folder: a run directory (its ``checkpoints/``)
            or the folder :func:`~ignite_mnist.handlers.attach_checkpointing` writes to;
            a folder's newest "last" checkpoint is used.
        trainer: the trainer whose handlers and objects are restored (the data's
            position when ``trainer.run`` starts); the metrics log drops the rows
            written after the checkpoint.

    Raises:
        CheckpointError: the file is unusable, or lacks an object the trainer saves.
    """
    source = Path(source)
    path = source if source.is_file() else RunDir(source).latest_checkpoint() or find_latest_checkpoint(source)
    if path is None:
        return None
    checkpoint = load_checkpoint(path, inside=None if source.is_file() else source)
    state = resumable_state(trainer)
    restored = state.restore(checkpoint, path)
    plan = ResumePlan(path, checkpoint, in_place=True)
    rewind_logs(state.objects, plan.iteration)
    epoch_length = int(checkpoint.get("trainer", {}).get("epoch_length") or 0)
    return Resumed(path, plan.iteration, plan.iteration // epoch_length if epoch_length else 0, restored)
