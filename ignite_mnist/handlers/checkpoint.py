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
is :mod:`ignite_mnist.storage.checkpoints`; file names are ``last_checkpoint_<iteration>.pt``
and ``best_checkpoint_<iteration>_<score_name>=<score>.pt``.

What a checkpoint holds is collected by itself (:func:`~ignite_mnist.handlers.resumable_state`):
the trainer, RNG states, the data's position and every stateful handler of this
project; the caller names only its own objects. The saves are attached when the
trainer starts, after every other handler, so at an epoch's end a checkpoint
holds what validation, early stopping and the logs made of that epoch, whatever
the order of the ``attach_*`` calls. The files written are known from
the saver (its own record), never from Ignite's private fields.

Example:
    >>> import tempfile
    >>> from ignite.engine import Engine
    >>> model = torch.nn.Linear(2, 2)
    >>> trainer = Engine(lambda engine, batch: torch.tensor(0.5))
    >>> folder = Path(tempfile.mkdtemp())
    >>> handlers = attach_checkpointing(trainer, folder, {"model": model})
    >>> _ = trainer.run(range(4), max_epochs=2)
    >>> sorted(p.name for p in folder.iterdir())
    ['last_checkpoint_4.pt', 'last_checkpoint_8.pt']
    >>> sorted(torch.load(handlers.latest_path, weights_only=True))
    ['best_checkpointer', 'checkpointer', 'model', 'rng', 'trainer']
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import torch
from ignite.engine import Engine, Events
from ignite.handlers import Checkpoint, DiskSaver, global_step_from_engine

from ignite_mnist.errors import CheckpointError
from ignite_mnist.events import EngineEvent, Handlers, ValidationEvents, add_for_each_event, ends_epoch_next
from ignite_mnist.handlers.state import SAVE, resumable_state
from ignite_mnist.handlers.validation import VALIDATION_PREFIX, declare_mode, known_mode, monitor_mode
from ignite_mnist.runtime.distributed import is_rank_zero
from ignite_mnist.storage.checkpoints import (
    BEST_PREFIX,
    LAST_PREFIX,
    checkpoint_iteration,
    find_best_checkpoint,
    find_latest_checkpoint,
)

__all__ = ["BestScore", "CheckpointHandlers", "attach_checkpointing", "finite_weights"]


class CheckpointHandlers:
    """What :func:`attach_checkpointing` attached: Ignite ``Checkpoint`` objects for "last" and "best" files.

    Both are in the trainer's :class:`~ignite_mnist.handlers.state.ResumableState`
    (as ``checkpointer`` and ``best_checkpointer``), so a resume in the same folder
    keeps rotating the same files.
    """

    def __init__(self, trainer: Engine, last: Checkpoint, best: Checkpoint | None, event: EngineEvent) -> None:
        self.trainer, self.last, self.best, self.event = trainer, last, best, event
        # a signal's save: a "last" file outside the rotation, so a run interrupted and resumed keeps the same
        # files as one left alone (it goes once a newer save of the rotation exists)
        self.interrupt = Checkpoint({}, last.save_handler, filename_prefix=LAST_PREFIX, n_saved=None,
                                    global_step_transform=last.global_step_transform)
        self.state = resumable_state(trainer)
        self.handlers = Handlers()
        self._due = False  # an iteration save that fell on an epoch's end waits for EPOCH_COMPLETED
        self._last_saved_at: int | None = None  # the trainer iteration of the newest "last" file this process wrote

    def attach(self, trainer: Engine) -> None:
        """Attach the saves (called when the trainer starts, so they run after every other handler); the best
        files' score direction is settled now when it is known (else after the first validation, from the
        evaluator's metrics)."""
        if self.handlers:
            return
        if self.best is not None:
            self.best.score_function.resolve_if_known()  # type: ignore[union-attr]
        add_for_each_event(self.handlers, trainer, self.event, self.save_last)
        self.handlers.add(trainer, Events.EPOCH_COMPLETED, self._save_due)
        if self.best is not None:
            self.handlers.add(trainer, ValidationEvents.VALIDATION_COMPLETED, self.save_best)

    def detach(self) -> None:
        """Stop checkpointing (the files stay)."""
        self.handlers.remove()
        self.state.cancel(self.attach)
        self.state.remove(self.last)
        if self.best is not None:
            self.state.remove(self.best)

    def _entries(self, checkpoint: Checkpoint) -> dict[str, Any]:
        """What ``checkpoint`` writes now: the trainer's resumable state; "last" files also the best
        files' bookkeeping (Ignite adds the "last" handler's own as ``checkpointer``)."""
        best = {"best_checkpointer": self.best} if checkpoint is self.last and self.best is not None else {}
        return self.state.to_save() | best

    def _save(self, engine: Engine, checkpoint: Checkpoint) -> None:
        checkpoint.to_save = self._entries(checkpoint)
        if finite_weights(checkpoint.to_save):
            self._write(engine, checkpoint)

    def _write(self, engine: Engine, checkpoint: Checkpoint) -> None:
        newest = checkpoint.last_checkpoint if checkpoint is self.last else None
        _save_or_explain(engine, checkpoint)
        if checkpoint is self.last:
            self._last_saved_at = engine.state.iteration
            after = checkpoint_iteration(newest) if newest is not None else None
            self._remove_superseded(after if after is not None else -1, engine.state.iteration)

    def _remove_superseded(self, after: int, before: int) -> None:
        """Delete the "last" files saved between the rotation's two newest (iterations ``after`` and ``before``):
        a signal's saves, now that a newer checkpoint of the rotation exists (only rank 0 writes files)."""
        folder = Path(self.last.save_handler.dirname)
        if not is_rank_zero() or not folder.is_dir():
            return
        for path in folder.iterdir():
            saved_at = checkpoint_iteration(path)
            if saved_at is not None and after < saved_at < before and not path.is_symlink():
                path.unlink(missing_ok=True)

    def save_last(self, engine: Engine, fired: Any = Events.EPOCH_COMPLETED) -> None:
        """Write a "last" checkpoint, unless the weights are not finite; at an epoch's last iteration the
        save waits for the epoch's end (so the epoch's validation and logs are in it)."""
        if ends_epoch_next(engine, fired):
            self._due = True
            return
        self._due = False
        self._save(engine, self.last)

    def _save_due(self, engine: Engine) -> None:
        if self._due:  # not saved at this epoch's end yet
            self.save_last(engine)

    def save_best(self, engine: Engine) -> None:
        """Keep the checkpoint if its score is among the best (called after each validation)."""
        assert self.best is not None
        self._save(engine, self.best)

    def save_now(self, trainer: Engine) -> Path:
        """Write a "last" checkpoint of the trainer's current state (used on signals); return its path.

        It stays out of the rotation of "last" files (which it carries, as ``checkpointer``): the
        resumed run's next save removes it, so its files end as those of a run left alone. One written
        at this iteration already (a signal during an epoch end's own save) is kept as it is."""
        if self._last_saved_at == trainer.state.iteration:
            return self.latest_path
        self.interrupt.to_save = self._entries(self.last) | {"checkpointer": self.last}
        _save_or_explain(trainer, self.interrupt)
        return Path(self.interrupt.last_checkpoint)  # type: ignore[arg-type]

    @property
    def latest_path(self) -> Path:
        """The newest "last" checkpoint written (Ignite's ``last_checkpoint`` already includes the folder)."""
        return Path(self.last.last_checkpoint)  # type: ignore[arg-type]

    @property
    def best_path(self) -> Path | None:
        """The best-scoring checkpoint this process wrote (kept), else the best one in the folder (a resumed run's)."""
        if self.best is None:
            return None
        saver: _DiskSaver = self.best.save_handler  # type: ignore[assignment]
        if saver.written:
            return Path(saver.dirname) / max(saver.written, key=lambda name: saver.written[name])
        return find_best_checkpoint(saver.dirname)


class _DiskSaver(DiskSaver):
    """Ignite's ``DiskSaver`` keeping a record of the files it wrote and still keeps (name -> score).

    Removing a file that is already gone is not an error: ``Checkpoint`` deletes
    the oldest file *before* writing the next; a crash or a full disk in between
    leaves the saved bookkeeping naming a deleted file, which the resumed run
    would otherwise fail to remove.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.written: dict[str, float] = {}

    def __call__(self, checkpoint: Mapping[str, Any], filename: str, metadata: Mapping[str, Any] | None = None
                 ) -> None:
        super().__call__(checkpoint, filename, metadata)
        self.written[filename] = float((metadata or {}).get("priority") or 0.0)

    def remove(self, filename: str) -> None:
        self.written.pop(filename, None)
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
        dirname = Path(checkpoint.save_handler.dirname)
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


def _saver(dirname: str | Path) -> _DiskSaver:
    return _DiskSaver(str(dirname), require_empty=False, atomic=True, create_dir=True)


class BestScore:
    """The score Ignite's ``Checkpoint`` keeps the highest of: ``trainer.state.metrics[monitor]``, negated where
    smaller is better (which is :func:`~ignite_mnist.handlers.validation.monitor_mode`'s answer: ``mode``,
    else what is known of the metric, at the trainer's start or at the first validation)."""

    def __init__(self, trainer: Engine, monitor: str, mode: str | None) -> None:
        if mode is not None:
            declare_mode(trainer, monitor, mode)  # a wrong mode fails here, at the attach call
        self.trainer, self.monitor, self.mode = trainer, monitor, mode
        self.sign: float | None = None

    def resolve(self) -> None:
        """Settle the direction (raises ``ValueError``, one line, when nothing tells it)."""
        self.sign = 1.0 if monitor_mode(self.trainer, self.monitor, self.mode) == "max" else -1.0

    def resolve_if_known(self) -> None:
        """Settle the direction when it is known already (at the trainer's start), else at the first score."""
        if self.mode is not None or known_mode(self.trainer, self.monitor) is not None:
            self.resolve()

    def __call__(self, engine: Engine) -> float:
        if self.sign is None:
            self.resolve()
        return self.sign * float(engine.state.metrics[self.monitor])  # type: ignore[operator]


def _best_checkpoint(trainer: Engine, saver: DiskSaver, score: BestScore, keep_best: int) -> Checkpoint:
    """Ignite's ``Checkpoint`` keeping the ``keep_best`` best by ``score``."""
    return Checkpoint(
        {}, saver, filename_prefix=BEST_PREFIX, n_saved=keep_best, score_function=score,
        score_name=score.monitor.removeprefix(VALIDATION_PREFIX),
        global_step_transform=global_step_from_engine(trainer, Events.ITERATION_COMPLETED),
    )


def attach_checkpointing(
    trainer: Engine,
    dirname: str | Path,
    objects: Mapping[str, Any] | None = None,
    *,
    event: EngineEvent = Events.EPOCH_COMPLETED,
    monitor: str | None = "val_accuracy",
    mode: str | None = None,
    keep_best: int = 2,
) -> CheckpointHandlers:
    """Save resumable checkpoints of ``trainer``'s run in ``dirname``.

    Args:
        trainer: the engine being trained.
        dirname: the folder of the checkpoint files.
        objects: your own objects by entry name, e.g. ``{"model": model, "optimizer": optimizer}``;
            the rest (trainer, RNG states, the data's position, this project's handlers) is added by itself.
        event: when to write a "last" checkpoint (the two newest are kept), e.g.
            ``Events.EPOCH_COMPLETED | Events.ITERATION_COMPLETED(every=500)``; never while a
            module's weights are NaN or infinite.
        monitor: after each validation (:class:`~ignite_mnist.events.ValidationEvents`), keep the
            ``keep_best`` best checkpoints by ``trainer.state.metrics[monitor]``; None: no best files.
        mode: ``max`` or ``min``; by default what is known of the monitored metric (an Ignite ``Loss`` is
            minimised, an ``Accuracy`` maximised: :func:`~ignite_mnist.handlers.validation.monitor_mode`); when
            nothing is, the trainer's start fails with one line asking for it. Never guessed from the name.

    Returns:
        The attached :class:`CheckpointHandlers` (``.detach()`` removes it).
    """
    if keep_best <= 0:
        raise ValueError(f"keep_best must be > 0, got {keep_best}")
    state = resumable_state(trainer)
    for name, obj in (objects or {}).items():
        state.add(name, obj)
    best = None
    if monitor is not None:
        best = _best_checkpoint(trainer, _saver(dirname), BestScore(trainer, monitor, mode), keep_best)
        state.add("best_checkpointer", best, bookkeeping=True)
        if not trainer.has_registered_events(ValidationEvents.VALIDATION_COMPLETED):
            trainer.register_events(*ValidationEvents)
    last = Checkpoint({}, _saver(dirname), filename_prefix=LAST_PREFIX, n_saved=2, include_self=True,
                      global_step_transform=global_step_from_engine(trainer, Events.ITERATION_COMPLETED))
    state.add("checkpointer", last, bookkeeping=True)
    state.checkpoint_dir = Path(dirname)
    handlers = CheckpointHandlers(trainer, last, best, event)
    state.defer(SAVE, handlers.attach)
    return handlers
