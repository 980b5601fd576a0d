"""What an exact resume restores, collected from the handlers themselves: :func:`resumable_state`.

Ignite's ``Checkpoint`` saves the ``to_save`` dict it is given; keeping that dict
complete was the caller's job. Here every stateful handler of this project
registers its object with the trainer it is attached to, and the trainer itself,
every random generator (:class:`~ignite_mnist.storage.checkpoints.RNGStates`) and the
position of the data the trainer runs on (``trainer.state.dataloader``, when it
has ``state_dict``) are in from the start. The caller names only what is theirs
(model, optimizer, a scheduler) in
:func:`~ignite_mnist.handlers.attach_checkpointing`.

It also orders what shares an event: the handlers that must see a whole epoch
(the metrics log's row, the checkpoint saves, the signal check) are attached when
the trainer starts (:meth:`ResumableState.defer`), after everything else, so the
order of the ``attach_*`` calls does not matter. When the trainer starts, the
objects that are stateful and tied to this run but missing from the state are
named in one warning line (see :func:`unsaved_objects` for what the project can see).

Example:
    >>> from ignite.engine import Engine
    >>> trainer = Engine(lambda engine, batch: None)
    >>> state = resumable_state(trainer)
    >>> state.add("model", torch.nn.Linear(2, 2))
    >>> sorted(state.to_save())
    ['model', 'rng', 'trainer']
    >>> resumable_state(trainer) is state
    True
"""

from __future__ import annotations

import gc
import weakref
from collections.abc import Callable, Collection, Mapping
from pathlib import Path
from typing import Any

import torch
from ignite.engine import Engine, Events

from ignite_mnist.console import note
from ignite_mnist.errors import RunFinishedError
from ignite_mnist.storage.checkpoints import RNGStates, restore_objects

__all__ = ["ResumableState", "resumable_state", "unsaved_objects"]

#: Orders of what runs when the trainer starts: settling handlers' settings, then attaching the rows, the saves
#: and the signal check.
SETUP, REPORT, SAVE, SIGNAL = 0, 1, 2, 3
#: The checkpoint entry of the trainer's data (its position in the epoch).
LOADER_ENTRY = "train_loader"

_STATES: weakref.WeakKeyDictionary[Engine, ResumableState] = weakref.WeakKeyDictionary()
#: Whether this process has looked for unsaved stateful objects already (it scans every live object).
_SCANNED = False


def _stateful(obj: Any) -> bool:
    return callable(getattr(obj, "state_dict", None)) and callable(getattr(obj, "load_state_dict", None))


class ResumableState:
    """The objects a trainer's checkpoints save and a resume restores, by checkpoint entry name.

    Attributes:
        objects: what every checkpoint saves (``trainer`` and ``rng`` from the start).
        bookkeeping: checkpoint handlers' own state, restored only when a run goes on in its own folder.
        own_run: names of the objects restored only then too (a tracker's run: a new run starts its own).
        checkpoint_dir: where the trainer's "last" checkpoints go (set by ``attach_checkpointing``).
        restored: the entry names of the checkpoint the state was restored from (empty before).
        all_named: the caller named every stateful object (the managed run): no scan for unsaved ones.
    """

    def __init__(self, trainer: Engine) -> None:
        self.trainer = trainer
        self.objects: dict[str, Any] = {"trainer": trainer, "rng": RNGStates()}
        self.bookkeeping: dict[str, Any] = {}
        self.own_run: set[str] = set()
        self.checkpoint_dir: Path | None = None
        self.restored: set[str] = set()
        self.restored_from: Path | None = None
        self.all_named = False
        self._loader_state: Any = None
        self._resumed_at: int | None = None
        self._deferred: list[tuple[int, Callable[[Engine], None]]] = []
        trainer.add_event_handler(Events.STARTED, self._started)

    def defer(self, order: int, attach: Callable[[Engine], None]) -> None:
        """Call ``attach(trainer)`` when the trainer first starts, after every ``attach_*`` call, by ``order``:
        ``SETUP`` (settings that need every handler attached), ``REPORT`` (the metrics log's rows), then ``SAVE``
        (checkpoints), then ``SIGNAL``."""
        self._deferred.append((order, attach))

    def cancel(self, attach: Callable[[Engine], None]) -> None:
        """Forget a deferred ``attach`` (its handler was detached before the trainer started)."""
        self._deferred = [(order, held) for order, held in self._deferred if held != attach]

    def add(self, name: str, obj: Any, *, replace: bool = False, bookkeeping: bool = False,
            own_run: bool = False) -> None:
        """Save ``obj`` (with ``state_dict``/``load_state_dict``) as entry ``name`` of every checkpoint;
        ``own_run``: restored only when the run goes on in its own folder (a tracker's run).

        Raises:
            ValueError: ``obj`` is not stateful; another object holds ``name``; or a resume already
                restored this entry's state (attach before calling ``resume_training``).
        """
        if not _stateful(obj):
            raise ValueError(f"{name}: {type(obj).__name__} has no state_dict/load_state_dict; it cannot be saved")
        held = self.objects.get(name, self.bookkeeping.get(name))
        replace = replace or type(held) is RNGStates  # the default generators give way to the caller's (per rank)
        if held is not None and held is not obj and not replace:
            raise ValueError(f"a {type(held).__name__} is saved as {name!r} already; give this one another name")
        if name in self.restored and held is not obj:
            raise ValueError(f"{name!r} was attached after resume_training restored {self.restored_from}: "
                             "move resume_training(...) below every attach_* call")
        (self.bookkeeping if bookkeeping else self.objects)[name] = obj
        if own_run:
            self.own_run.add(name)

    def remove(self, obj: Any) -> None:
        """Stop saving ``obj`` (a handler was detached)."""
        for table in (self.objects, self.bookkeeping):
            for name in [name for name, held in table.items() if held is obj]:
                del table[name]

    def get(self, name: str) -> Any:
        """The object saved as ``name`` (None when there is none)."""
        return self.objects.get(name)

    def to_save(self) -> dict[str, Any]:
        """Every checkpoint's entries: the objects, and the trainer's data when it has a position to save."""
        data = self.trainer.state.dataloader
        loader = {LOADER_ENTRY: data} if LOADER_ENTRY not in self.objects and _stateful(data) else {}
        return self.objects | loader

    def to_load(self, in_place: bool = True, skip: Collection[str] = ()) -> dict[str, Any]:
        """What a resume restores (the bookkeeping and ``own_run`` objects only ``in_place``, in the run's own
        folder), but ``skip``."""
        found = self.objects | self.bookkeeping if in_place else {
            name: obj for name, obj in self.objects.items() if name not in self.own_run}
        return {name: obj for name, obj in found.items() if name not in skip}

    def restore(self, checkpoint: Mapping[str, Any], source: Path, in_place: bool = True,
                skip: Collection[str] = ()) -> list[str]:
        """Restore every object from ``checkpoint`` but ``skip``; the data's position waits for ``trainer.run``."""
        restored = restore_objects(checkpoint, self.to_load(in_place, skip), source)
        if LOADER_ENTRY not in self.objects and LOADER_ENTRY in checkpoint:
            self._loader_state = checkpoint[LOADER_ENTRY]
            restored.append(LOADER_ENTRY)
        self.restored, self.restored_from = set(checkpoint), source
        self._resumed_at = self.trainer.state.iteration
        return restored

    def _rewind(self, iteration: int) -> None:
        """Objects that write files as they go (the metrics log) drop what they wrote after ``iteration``
        (when the restored trainer starts: a finished run that is not trained again keeps its files)."""
        for obj in self.objects.values():
            if callable(getattr(obj, "rewind", None)):
                obj.rewind(iteration)

    def stopped_run(self) -> bool:
        """Whether a saved object ended the run before its last epoch (early stopping: ``stopped_run``)."""
        return any(getattr(obj, "stopped_run", False) is True for obj in self.objects.values())

    def _go_on_from_checkpoint(self, trainer: Engine) -> None:
        """The first start after a restore: refuse to train a run that had finished (Ignite starts a trainer
        at its ``max_epochs`` over; early stopping may have ended it), then rewind what writes files."""
        resumed_at, self._resumed_at = self._resumed_at, None
        if resumed_at is None:
            return
        if resumed_at and (trainer.state.iteration < resumed_at or self.stopped_run()):
            raise RunFinishedError(f"{self.restored_from}: this run already finished (iteration {resumed_at}); "
                                   "nothing to train: check resume_training(...).finished before trainer.run, "
                                   "or give trainer.run more max_epochs")
        self._rewind(resumed_at)

    def _started(self, trainer: Engine) -> None:
        self._go_on_from_checkpoint(trainer)
        deferred, self._deferred = sorted(self._deferred, key=lambda item: item[0]), []
        for _, attach in deferred:
            attach(trainer)
        if self._loader_state is not None:
            data = trainer.state.dataloader
            if not _stateful(data):
                raise ValueError(f"{self.restored_from} holds a data position but trainer.run got "
                                 f"{type(data).__name__}, which cannot take it: run on the same loader")
            restore_objects({LOADER_ENTRY: self._loader_state}, {LOADER_ENTRY: data}, self.restored_from or "")
            self._loader_state = None
        self._warn_unsaved()

    def _warn_unsaved(self) -> None:
        """Name the stateful objects checkpoints would miss: once per process (it looks at every live
        object), and never where the caller named them all."""
        global _SCANNED
        if self.all_named or _SCANNED:
            return
        _SCANNED = True
        missing = unsaved_objects(self)
        if missing:
            note("warning", f"not saved in checkpoints, so a resume would not restore them: {', '.join(missing)}; "
                            "name them in attach_checkpointing(..., objects={...})")


def resumable_state(trainer: Engine) -> ResumableState:
    """The :class:`ResumableState` of ``trainer`` (made on first use; the handlers of this project add to it)."""
    if trainer not in _STATES:
        _STATES[trainer] = ResumableState(trainer)
    return _STATES[trainer]


def _stateful_class(kind: type) -> bool:
    """Whether instances of ``kind`` have ``state_dict``/``load_state_dict`` (only the class is asked, so no lazy
    module or proxy runs code); engines aside."""
    try:
        return (callable(getattr(kind, "state_dict", None)) and callable(getattr(kind, "load_state_dict", None))
                and kind is not type and not issubclass(kind, Engine))
    except Exception:  # noqa: BLE001 - a live object of any library: never let the check fail a run
        return False


def _live_stateful() -> list[Any]:
    """Every live object (tracked by the garbage collector) of a stateful class, with a ``__dict__``."""
    kinds: dict[type, bool] = {}
    found = []
    for obj in gc.get_objects():
        kind = type(obj)
        stateful = kinds.get(kind)
        if stateful is None:
            stateful = kinds[kind] = _stateful_class(kind)
        if stateful and isinstance(getattr(obj, "__dict__", None), dict):
            found.append(obj)
    return found


def _covered(objects: Mapping[str, Any]) -> set[int]:
    """Ids of the saved objects and of what they hold one level down (a wrapper's scheduler)."""
    ids = set()
    for obj in objects.values():
        ids.add(id(obj))
        for value in getattr(obj, "__dict__", {}).values():
            members = value if isinstance(value, (list, tuple)) else [value]
            ids.update(id(member) for member in members)
    return ids


def unsaved_objects(state: ResumableState) -> list[str]:
    """Stateful objects tied to this run that its checkpoints would not save, as ``"StepLR (of the optimizer)"``.

    What the project can see, among all live Python objects: optimizers over a
    parameter of a saved module, and objects with ``state_dict`` whose
    ``optimizer`` is such an optimizer or a saved one (torch and Ignite LR
    schedulers) or whose ``trainer`` is this trainer (Ignite's ``EarlyStopping``).
    A saved object's own attributes count as saved (Ignite's ``LRScheduler`` holds
    torch's). Anything else (state in a closure, a plain attribute) it cannot see.
    """
    saved = state.to_save() | state.bookkeeping
    params = {id(p) for obj in saved.values() if isinstance(obj, torch.nn.Module) for p in obj.parameters()}
    if not params:
        return []
    live = _live_stateful()
    optimizers = [obj for obj in live if isinstance(obj, torch.optim.Optimizer)
                  and any(id(p) in params for group in obj.param_groups for p in group["params"])]
    tied = {id(obj) for obj in optimizers}
    tied |= {id(obj) for obj in saved.values() if isinstance(obj, torch.optim.Optimizer)}
    covered = _covered(saved)
    found = [f"{type(obj).__name__} (over the model's parameters)" for obj in optimizers if id(obj) not in covered]
    for obj in live:
        if id(obj) in covered or isinstance(obj, torch.optim.Optimizer):
            continue
        attributes = vars(obj)
        if id(attributes.get("optimizer")) in tied:
            found.append(f"{type(obj).__name__} (of the optimizer)")
        elif attributes.get("trainer") is state.trainer:
            found.append(f"{type(obj).__name__} (of the trainer)")
    return found
