"""Checkpoint file names, and finding the newest and the best checkpoint of a folder, without torch.

The one owner of the names: ``last_checkpoint_<iteration>.pt`` (the rotating
resumable states) and ``best_checkpoint_<iteration>_<score name>=<score>.pt``
(kept by score; for a loss the score in the name is negated, so higher is always
better). Reading the files is :mod:`ignite_mnist.storage.checkpoints` (which re-exports
these names); this module imports nothing heavy, so commands that only look at
run folders (``compare``, ``sweep``) start fast.

Example:
    >>> checkpoint_iteration("runs/a/checkpoints/last_checkpoint_1719.pt")
    1719
    >>> best_score("best_checkpoint_1719_accuracy=0.9712.pt")
    0.9712
"""

from __future__ import annotations

import re
from pathlib import Path

__all__ = [
    "BEST_PREFIX",
    "LAST_PREFIX",
    "best_score",
    "checkpoint_iteration",
    "find_best_checkpoint",
    "find_latest_checkpoint",
    "is_checkpoint_name",
    "is_stray_temporary",
    "remove_stray_temporaries",
    "saved_iteration",
]

LAST_PREFIX = "last"
BEST_PREFIX = "best"
_LAST_PATTERN = re.compile(rf"^{LAST_PREFIX}_checkpoint_(\d+)\.pt\Z")
_BEST_PATTERN = re.compile(rf"^{BEST_PREFIX}_checkpoint_(\d+)_\w+=(-?[\d.]+(?:e-?\d+)?)\.pt\Z")
# what ``tempfile.NamedTemporaryFile`` (Ignite's atomic ``DiskSaver``) names a file before renaming it
_TEMPORARY_PATTERN = re.compile(r"^tmp[a-z0-9_]{8}$")


def checkpoint_iteration(path: str | Path) -> int | None:
    """The trainer iteration in a "last" checkpoint's file name, or None for other names."""
    match = _LAST_PATTERN.match(Path(path).name)
    return int(match.group(1)) if match else None


def saved_iteration(path: str | Path) -> int | None:
    """The trainer iteration in a "last" or "best" checkpoint's file name, or None for other names.

    Example:
        >>> saved_iteration("best_checkpoint_400_accuracy=0.9262.pt"), saved_iteration("notes.txt")
        (400, None)
    """
    match = _BEST_PATTERN.match(Path(path).name)
    return int(match.group(1)) if match else checkpoint_iteration(path)


def is_checkpoint_name(name: object, prefix: str | None = None) -> bool:
    """Whether ``name`` is a plain file name of a "last" or "best" checkpoint (starting with ``prefix_``, if given).

    A name read from a checkpoint (Ignite's rotation state) must pass this before it is used:
    no folder, no ``..``, nothing absolute, only the names this module gives.

    Example:
        >>> is_checkpoint_name("last_checkpoint_40.pt"), is_checkpoint_name("../../../VICTIM.pt")
        (True, False)
        >>> is_checkpoint_name("best_checkpoint_4_accuracy=0.9.pt", prefix=LAST_PREFIX)
        False
    """
    if not isinstance(name, str) or Path(name).name != name or saved_iteration(name) is None:
        return False
    return prefix is None or name.startswith(f"{prefix}_")


def is_stray_temporary(path: str | Path) -> bool:
    """Whether ``path`` is a temporary file a killed checkpoint save left (``tmpXXXXXXXX``), never a checkpoint.

    Example:
        >>> is_stray_temporary("checkpoints/tmpa1b2c3d4"), is_stray_temporary("last_checkpoint_4.pt")
        (True, False)
    """
    return bool(_TEMPORARY_PATTERN.match(Path(path).name))


def remove_stray_temporaries(dirname: str | Path) -> list[Path]:
    """Delete the temporary files (``tmpXXXXXXXX``) saves killed between write and rename left in ``dirname``;
    return them. Only regular files of that name directly in the folder are touched (never a link)."""
    dirname = Path(dirname)
    stray = [p for p in dirname.iterdir() if is_stray_temporary(p) and p.is_file() and not p.is_symlink()
             ] if dirname.is_dir() and not dirname.is_symlink() else []
    for path in stray:
        path.unlink(missing_ok=True)
    return stray


def best_score(path: str | Path) -> float | None:
    """The score in a "best" checkpoint's file name (higher is better: a loss is stored negated), or None."""
    match = _BEST_PATTERN.match(Path(path).name)
    return float(match.group(2)) if match else None


def find_latest_checkpoint(dirname: str | Path, *, before: int | None = None) -> Path | None:
    """The newest "last" checkpoint in ``dirname`` (highest iteration, below ``before`` if given), or None."""
    dirname = Path(dirname)
    if not dirname.is_dir():
        return None
    candidates = [(checkpoint_iteration(p), p) for p in dirname.iterdir()]
    usable = ((it, p) for it, p in candidates if it is not None and (before is None or it < before))
    return max(usable, default=(None, None))[1]


def find_best_checkpoint(dirname: str | Path) -> Path | None:
    """The "best" checkpoint in ``dirname`` with the highest score (the earliest of equal ones), or None."""
    dirname = Path(dirname)
    if not dirname.is_dir():
        return None
    scored = [(best_score(p), -int(p.name.split("_")[2]), p) for p in dirname.iterdir() if best_score(p) is not None]
    return max(scored, default=(None, None, None))[2]
