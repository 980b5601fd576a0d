"""Checkpoint files: their names, safe loading, and the state objects an exact resume needs.

The core under both the managed run and a custom trainer: it writes nothing
itself (``attach_checkpointing`` in :mod:`ignite_mnist.handlers.checkpoint` does,
through Ignite's ``Checkpoint``) and attaches nothing. Added here because neither
Ignite nor torch has it:

* :class:`RNGStates`: every random generator in play as one checkpointable object;
* :class:`ConfigState`: the run's settings stored beside the weights;
* :func:`load_checkpoint`: ``torch.load(weights_only=True)`` (no code from the file
  runs) with one-line errors for missing, damaged and unsafe files;
* the file names (``last_checkpoint_<iteration>.pt``,
  ``best_checkpoint_<iteration>_<score name>=<score>.pt``) and how to find the
  newest and the best of a folder;
* :func:`restore_objects`: Ignite's ``Checkpoint.load_objects`` for whatever part
  of a checkpoint the caller holds objects for.

Each file is a plain dict of tensors and Python values, one entry per saved object.

The file names, and finding the newest or best file of a folder, are
:mod:`ignite_mnist.storage.checkpoint_files` (re-exported here).

Example:
    >>> sorted(RNGStates().state_dict())
    ['cuda', 'numpy', 'python', 'torch']
"""

from __future__ import annotations

import inspect
import math
import os
import pickle
import pickletools
import random
import re
import warnings
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any, cast

import numpy as np
import torch

from ignite_mnist.errors import CheckpointError, ConfigError, UnsafeFileError, first_line
from ignite_mnist.limits import MAX_CHECKPOINT_BYTES
from ignite_mnist.registry import TRACKERS
from ignite_mnist.settings.config import coerce_setting, current_names, setting_fields
from ignite_mnist.storage.checkpoint_files import (
    BEST_PREFIX,
    LAST_PREFIX,
    best_score,
    checkpoint_iteration,
    find_best_checkpoint,
    find_latest_checkpoint,
    is_checkpoint_name,
    saved_iteration,
)
from ignite_mnist.storage.reader import open_file, size_text

__all__ = [
    "BEST_PREFIX",
    "LAST_PREFIX",
    "ConfigState",
    "RNGStates",
    "best_score",
    "check_state",
    "checkpoint_iteration",
    "find_best_checkpoint",
    "find_latest_checkpoint",
    "load_checkpoint",
    "newest_intact_checkpoint",
    "restore_objects",
    "saved_iteration",
    "saved_settings",
]

#: Entries a checkpoint may lack: bookkeeping that only some files or some runs have.
OPTIONAL_ENTRIES = frozenset({
    "config", "dataset", "checkpointer", "best_checkpointer", "record", "loss_averages", "metrics_log", "grad_scaler",
    *TRACKERS,
})
# torch's words for the first global it refused, across versions
_REFUSED_GLOBAL = re.compile(r"(?:Unsupported global: GLOBAL|unsupported GLOBAL) ([\w.]+)")
#: Bytes a checkpoint may unpack to beyond twice its size (archive headers and padding).
MAX_ARCHIVE_SLACK = 1 << 20
#: The most file names one checkpointer's rotation state may hold (it keeps ``n_saved`` of them).
MAX_SAVED_NAMES = 1000
#: The most items a list in a checkpoint's bookkeeping may hold.
MAX_SAVED_ITEMS = 100_000
#: A tracker's run id as W&B and MLflow make them: letters, digits, ``_`` and ``-``, at most 128.
_RUN_ID = re.compile(r"[A-Za-z0-9][\w-]{0,127}")
#: The values a setting stored in a file may have (no tensors, no objects).
_PLAIN = (type(None), bool, int, float, str)


class RNGStates:
    """Every random generator in play, as a checkpointable object.

    Covers torch's CPU generator, every initialised CUDA device, Python's ``random``
    and NumPy's global generator (its key array stored as a tensor, so the
    checkpoint stays loadable with ``weights_only=True``).

    Example:
        >>> saved = RNGStates().state_dict()
        >>> first = torch.rand(1)
        >>> RNGStates().load_state_dict(saved)
        >>> torch.equal(torch.rand(1), first)
        True
    """

    def state_dict(self) -> dict[str, Any]:
        kind, keys, position, has_gauss, cached = cast(tuple[str, np.ndarray, int, int, float],
                                                       np.random.get_state(legacy=True))
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
    """A plain settings dict as a checkpointable object (saved, never loaded back over the run's config).

    Example:
        >>> ConfigState({"lr": 0.001}).state_dict()
        {'lr': 0.001}
    """

    def __init__(self, values: Mapping[str, Any]) -> None:
        self.values = dict(values)

    def state_dict(self) -> dict[str, Any]:
        return dict(self.values)

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Checkpoint configs are compared by the caller, not applied."""


def _corrupted(path: Path, error: Exception) -> str:
    return f"{path}: corrupted or truncated checkpoint ({type(error).__name__}); use another checkpoint of the run"


def _open_checkpoint(path: Path, inside: str | Path | None) -> IO[bytes]:
    """The checkpoint file opened by :func:`~ignite_mnist.storage.reader.open_file`, or a one-line error."""
    try:
        return open_file(path, MAX_CHECKPOINT_BYTES, inside=inside)
    except FileNotFoundError:
        raise CheckpointError(f"{path}: no such checkpoint file; check the path") from None
    except UnsafeFileError as error:
        raise CheckpointError(f"{path}: refused: {error.reason} (a checkpoint is a regular file of at most "
                              f"{size_text(MAX_CHECKPOINT_BYTES)}); use a checkpoint ignite-mnist wrote") from None
    except OSError as error:
        raise CheckpointError(f"{path}: cannot be read ({error.strerror or error}); check the path") from None


def load_checkpoint(path: str | Path, *, inside: str | Path | None = None) -> dict[str, Any]:
    """Read a checkpoint safely (``weights_only=True``: no code from the file runs).

    Any dict with a ``model`` entry (a state dict) is accepted, so checkpoints a
    custom trainer wrote with :func:`~ignite_mnist.handlers.attach_checkpointing`
    load too; ``config`` and the rest are there when the managed run wrote it.
    The file is opened once, by the one reader (a regular file of at most
    :data:`~ignite_mnist.limits.MAX_CHECKPOINT_BYTES`; with ``inside``, a file found
    in that run directory, it must lie inside it), and every check reads that handle.

    Raises:
        CheckpointError: the file is missing, a pipe, a device, too big, a link out of ``inside``,
            truncated/corrupted, carries pickled code, or holds no model state.
    """
    path = Path(path)
    with _open_checkpoint(path, inside) as handle:
        if zipfile.is_zipfile(handle):
            _check_unpacked_size(path, handle)
        handle.seek(0)
        try:
            with warnings.catch_warnings():  # torch warns about pickle protocols before it refuses a foreign file
                warnings.simplefilter("ignore", UserWarning)
                checkpoint = torch.load(handle, map_location="cpu", weights_only=True)
        except Exception as error:  # noqa: BLE001 - a damaged file fails anywhere in the reader: zip, pickle, sizes
            # torch's weights-only unpickler names the first global it refused ("... GLOBAL posix.system ..."); a
            # plain pickle it cannot even parse is read here, without running it, for the globals it names
            refused = _REFUSED_GLOBAL.search(str(error)) if isinstance(error, pickle.UnpicklingError) else None
            named = refused.group(1) if refused else _first_pickled_global(handle)
            if named is None:
                raise CheckpointError(_corrupted(path, error)) from None
            raise CheckpointError(
                f"{path}: refused to load: the file holds objects other than tensors and plain values "
                f"({named}), which could run code; load only checkpoints written by ignite-mnist"
            ) from None
    if not isinstance(checkpoint, dict) or not isinstance(checkpoint.get("model"), Mapping):
        raise CheckpointError(f"{path}: not a training checkpoint (no model state inside)")
    return checkpoint


def newest_intact_checkpoint(dirname: str | Path, *, before: int | None = None
                             ) -> tuple[Path, dict[str, Any], list[str]] | None:
    """The newest "last" checkpoint of folder ``dirname`` (below iteration ``before``) that loads, read; and why
    each newer one was skipped (:func:`load_checkpoint`'s message). None when no "last" checkpoint loads."""
    skipped: list[str] = []
    while (path := find_latest_checkpoint(dirname, before=before)) is not None:
        try:
            return path, load_checkpoint(path, inside=dirname), skipped
        except CheckpointError as error:
            skipped.append(str(error))
            before = checkpoint_iteration(path)
    return None


def _check_unpacked_size(path: Path, handle: IO[bytes]) -> None:
    """Refuse, before reading it, an archive that would unpack far beyond its size (torch stores tensors
    uncompressed, so a checkpoint unpacks to about its own size; a crafted one could claim gigabytes)."""
    size = os.fstat(handle.fileno()).st_size
    try:
        with zipfile.ZipFile(handle) as archive:
            unpacked = sum(entry.file_size for entry in archive.infolist())
    except (zipfile.BadZipFile, OSError) as error:
        raise CheckpointError(_corrupted(path, error)) from None
    if unpacked > 2 * size + MAX_ARCHIVE_SLACK:
        raise CheckpointError(f"{path}: refused to load: it would unpack to {unpacked / 1e6:.0f} MB from "
                              f"{size / 1e6:.1f} MB, which torch.save never writes; use a checkpoint of an "
                              "ignite-mnist run")


def _first_pickled_global(handle: IO[bytes]) -> str | None:
    """The first ``module.name`` a plain pickle file refers to, read with ``pickletools`` (nothing is run)."""
    strings: list[str] = []
    try:
        handle.seek(0)
        for opcode, argument, _ in pickletools.genops(handle):
            if opcode.name in ("GLOBAL", "INST"):
                return str(argument).replace(" ", ".")
            if opcode.name == "STACK_GLOBAL" and len(strings) >= 2:
                return f"{strings[-2]}.{strings[-1]}"
            if isinstance(argument, str):
                strings.append(argument)
    except Exception:  # noqa: BLE001 - not a pickle at all
        return None
    return None


def _saved_names_error(source: str | Path, name: str, what: str) -> CheckpointError:
    return CheckpointError(f"{source}: its {name} state names {what}, not a checkpoint file of this run; refused "
                           "before anything was restored or removed; use a checkpoint of this run")


def _check_saved_names(source: str | Path, name: str, state: Any, prefix: str) -> None:
    """Ignite's rotation state (``{"_saved": [(priority, file name), ...]}``): every name a plain checkpoint name."""
    saved = state.get("_saved") if isinstance(state, Mapping) else None
    if not isinstance(saved, (list, tuple)) or len(saved) > MAX_SAVED_NAMES:
        raise _saved_names_error(source, name, "no list of at most 1000 saved files")
    for item in saved:
        pair = item if isinstance(item, (list, tuple)) and len(item) == 2 else (None, None)
        priority, filename = pair
        if not is_checkpoint_name(filename, prefix):
            raise _saved_names_error(source, name, repr(filename)[:80])
        if isinstance(priority, bool) or not isinstance(priority, (int, float)) or not math.isfinite(priority):
            raise _saved_names_error(source, name, f"a priority {repr(priority)[:40]} (not a finite number)")


def check_state(checkpoint: Mapping[str, Any], to_load: Mapping[str, Any], source: str | Path = "checkpoint") -> None:
    """Refuse names a crafted checkpoint could use to reach outside its run, before anything is restored.

    * an Ignite ``Checkpoint``'s rotation state names the files it will remove and read: each must be a
      plain file name of that checkpointer's own kind
      (:func:`~ignite_mnist.storage.checkpoint_files.is_checkpoint_name`);
    * a tracker's run id (W&B, MLflow) becomes part of paths and URLs: letters, digits, ``_`` and ``-`` only.

    Raises:
        CheckpointError: one line naming the entry; nothing has been restored, moved or removed.

    Ignite is imported here, not with the module: reading a checkpoint (``predict``) needs none of it.

    Example:
        >>> from ignite.handlers import Checkpoint, DiskSaver
        >>> saver = DiskSaver("/tmp/demo-checkpoints", require_empty=False)
        >>> last = Checkpoint({"model": torch.nn.Linear(1, 1)}, saver, filename_prefix="last")
        >>> check_state({"checkpointer": {"_saved": [(4, "../../VICTIM.pt")]}}, {"checkpointer": last}, "a.pt")
        Traceback (most recent call last):
        ...
        ignite_mnist.errors.CheckpointError: a.pt: its checkpointer state names '../../VICTIM.pt', not a \
checkpoint file of this run; refused before anything was restored or removed; use a checkpoint of this run
    """
    from ignite.handlers import Checkpoint

    for name, obj in to_load.items():
        if name not in checkpoint or name == "config":  # the settings are read, never loaded over the run's
            continue
        state = checkpoint[name]
        if isinstance(obj, torch.optim.Optimizer):
            _check_optimizer_state(obj, state, source)
        generic = name != "model" and name not in TRACKERS and not isinstance(obj, Checkpoint)  # checked below
        if generic and callable(getattr(obj, "state_dict", None)):
            bad = _unlike(obj.state_dict(), state, name)
            if bad is not None:
                raise CheckpointError(f"{source}: its {bad} is not of the kind this run saves; the file is damaged "
                                      "or was not written by this kind of run")
        if isinstance(obj, Checkpoint):
            _check_saved_names(source, name, state, obj.filename_prefix)
        elif name in TRACKERS:
            run_id = state.get("run_id") if isinstance(state, Mapping) else "(no state)"
            if run_id is not None and not (isinstance(run_id, str) and _RUN_ID.fullmatch(run_id)):
                raise CheckpointError(f"{source}: its {name} run id {repr(run_id)[:80]} is not one the tracker "
                                      "makes (letters, digits, _ and -); use a checkpoint of this run")


def _unlike(fresh: Any, saved: Any, where: str) -> str | None:
    """Where ``saved`` (an entry of a checkpoint) is not of the kind ``fresh`` (the object's own state) is, or None.

    A dict's entries that the object has are checked (one the file lacks is left to the object's
    ``load_state_dict``, which may default it for older files); lists need the same length and items
    of the kinds the object's have (any plain items when it has none yet); tensors the same dtype;
    numbers must be finite; a None of the object's may become a number or a tensor.
    """
    if isinstance(fresh, Mapping):
        if not isinstance(saved, Mapping):
            return where
        # a key the file lacks is the object's to refuse when it loads (or to default, for older files)
        pairs = [(fresh[k], saved[k], f"{where}.{k}") for k in fresh if k in saved] if fresh else [
            (_empty_like(v), v, where) for v in saved.values()]
        return next((bad for f, v, w in pairs if (bad := _unlike(f, v, w))), None)
    if isinstance(fresh, (list, tuple)):
        if not isinstance(saved, (list, tuple)) or len(saved) > MAX_SAVED_ITEMS or (fresh and len(saved) != len(fresh)):
            return where
        items = list(zip(fresh, saved, strict=True)) if fresh else [(_empty_like(v), v) for v in saved]
        return next((bad for f, v in items if (bad := _unlike(f, v, f"{where}[]"))), None)
    if isinstance(fresh, torch.Tensor):
        return None if isinstance(saved, torch.Tensor) and saved.dtype == fresh.dtype else where
    if isinstance(saved, float) and not math.isfinite(saved):
        return where
    if fresh is None:  # not set yet (a count, a best score): a number, or a tensor on a GPU
        return None if saved is None or isinstance(saved, (int, float, torch.Tensor)) else where
    if isinstance(fresh, bool) or isinstance(saved, bool):
        return None if type(saved) is type(fresh) else where
    if isinstance(fresh, (int, float)):
        return None if isinstance(saved, (int, float)) and (isinstance(fresh, float) or isinstance(saved, int)) \
            else where
    return None if isinstance(saved, type(fresh)) else where


def _empty_like(saved: Any) -> Any:
    """What an object with no state yet (an optimizer before its first step) has in place of ``saved``."""
    return {} if isinstance(saved, Mapping) else [] if isinstance(saved, (list, tuple)) else None


def _step_keys(optimizer: torch.optim.Optimizer) -> set[str]:
    """The per-parameter state keys ``optimizer``'s kind keeps (Adam: step, exp_avg, exp_avg_sq), from one step of
    a throwaway copy on zero tensors shaped like the first parameter."""
    first = optimizer.param_groups[0]["params"][0]
    probe = torch.zeros_like(first, requires_grad=True)
    probe.grad = torch.zeros_like(first)
    accepted = inspect.signature(type(optimizer)).parameters  # AdamW's defaults hold a setting its __init__ lacks
    copy = type(optimizer)([probe], **{k: v for k, v in optimizer.defaults.items() if k in accepted})
    copy.step()
    return set(copy.state[probe])


def _check_optimizer_state(optimizer: torch.optim.Optimizer, saved: Any, source: str | Path) -> None:
    """Each saved per-parameter state has the keys the optimizer keeps, its tensors shaped like the parameter."""
    params = [p for group in optimizer.param_groups for p in group["params"]]
    state = saved.get("state") if isinstance(saved, Mapping) else None
    keys = _step_keys(optimizer) if isinstance(state, Mapping) and state else set()
    for index, values in state.items() if isinstance(state, Mapping) else []:
        shape = params[index].shape if isinstance(index, int) and 0 <= index < len(params) else None
        fits = shape is not None and isinstance(values, Mapping) and set(values) == keys and all(
            isinstance(v, torch.Tensor) and v.is_floating_point() and (v.dim() == 0 or v.shape == shape)
            for v in values.values())
        if not fits:
            raise CheckpointError(f"{source}: its optimizer state {index!r} does not fit this run's parameters; "
                                  "use a checkpoint of this run")


def saved_settings(saved: Any, source: str | Path) -> dict[str, Any]:
    """The training settings a checkpoint (or a run's ``config.json``) holds, each checked for its type.

    Names this version does not know are left out; a value of the wrong type (a string
    for ``epochs``, a null ``data_dir``, a tensor) is one line. Ranges and choices are
    :meth:`~ignite_mnist.settings.config.TrainConfig.validate`'s.

    Raises:
        CheckpointError: no settings mapping, or a value of the wrong type.

    Example:
        >>> saved_settings({"epochs": 3, "lr": 1, "flavour": "x"}, "a.pt")
        {'epochs': 3, 'lr': 1.0}
        >>> saved_settings({"epochs": "3"}, "a.pt")
        Traceback (most recent call last):
        ...
        ignite_mnist.errors.CheckpointError: a.pt: its config.epochs: expected an integer, got '3'; the file is \
damaged or was not written by ignite-mnist
    """
    if not isinstance(saved, Mapping) or not all(isinstance(key, str) for key in saved):
        raise CheckpointError(f"{source}: holds no ignite-mnist settings (a custom trainer wrote it?)")
    known = setting_fields()
    values = {}
    for name, value in current_names(dict(saved)).items():
        if name not in known:
            continue
        plain = isinstance(value, _PLAIN) or (isinstance(value, list) and all(isinstance(v, str) for v in value))
        error = None if plain else ConfigError(name, f"expected a plain value, got a {type(value).__name__}")
        if error is None:
            try:
                values[name] = coerce_setting(name, value)
            except ConfigError as refused:
                error = refused
        if error is not None:
            raise CheckpointError(f"{source}: its config.{name}: {error.message[:200]}; the file is damaged or was "
                                  "not written by ignite-mnist")
    return values


def restore_objects(checkpoint: Mapping[str, Any], to_load: Mapping[str, Any], source: str | Path = "checkpoint"
                    ) -> list[str]:
    """Restore every object of ``to_load`` found in ``checkpoint`` (Ignite's ``Checkpoint.load_objects``).

    ``config`` is never loaded over the current config. Entries of
    ``OPTIONAL_ENTRIES`` may be missing from the file; any other missing entry
    is an error, and so is an entry that does not fit its object (other weights,
    a damaged state): the message names ``source`` and the entry.

    Returns:
        The names restored.

    Raises:
        CheckpointError: the checkpoint lacks an object the caller needs, or one does not fit.

    Example:
        >>> restore_objects({"model": {"weight": torch.zeros(3)}}, {"model": torch.nn.Linear(2, 2)},
        ...                 "a.pt")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        ignite_mnist.errors.CheckpointError: a.pt: its model does not fit this run (...); use a checkpoint of this run
    """
    missing = sorted(set(to_load) - set(checkpoint) - OPTIONAL_ENTRIES)
    if missing:
        raise CheckpointError(f"{source}: lacks {', '.join(missing)}; it was not written by this kind of run")
    from ignite.handlers import Checkpoint

    check_state(checkpoint, to_load, source)
    wanted = {k: v for k, v in to_load.items() if k != "config" and k in checkpoint}
    for name, obj in wanted.items():
        try:
            Checkpoint.load_objects({name: obj}, {name: checkpoint[name]})
        except Exception as error:  # noqa: BLE001 - whatever a crafted or foreign entry raises, say which entry
            raise CheckpointError(f"{source}: its {name} does not fit this run ({first_line(error)}); "
                                  "use a checkpoint of this run") from None
    return list(wanted)
