"""Resume policy: which checkpoint ``--resume`` means, which run it continues, and what it restores.

* ``--resume PATH`` takes that file; ``--resume auto`` the newest "last"
  checkpoint of ``--run-name`` (without it: of the unfinished run in
  ``--output-dir`` whose newest checkpoint is the most recent, and it says which).
  With ``--run-name``, ``auto`` on a run that has saved no checkpoint yet (or does
  not exist) starts it fresh and says so, so one command line serves a first start
  and every restart after it (a requeued batch job, torchrun's ``--max-restarts``).
* A checkpoint in ``<run>/checkpoints/`` continues that run in place (its files,
  its W&B run); given another ``--run-name``/``--output-dir``, or a checkpoint
  kept outside a run, a new run starts from it.
* Another ``--model``/``--dataset`` is refused (another experiment); other
  settings that break an exact continuation are refused unless
  ``--allow-config-change``.

The checkpoint is read once (:class:`ResumePlan` carries it from the command
line to the run) and restored by the public :func:`ignite_mnist.handlers.resume_training`,
the one restore path a custom trainer uses too; this module adds only what a run
directory and its settings need (the settings of the checkpoint, what is moved aside).

Example:
    >>> plan = ResumePlan(Path("runs/a/checkpoints/last_checkpoint_40.pt"), {"model": {}}, in_place=True)
    >>> plan.iteration
    40
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ignite_mnist.console import say
from ignite_mnist.errors import CheckpointError, ConfigError
from ignite_mnist.handlers.resume import SavedCheckpoint
from ignite_mnist.runtime.distributed import is_rank_zero
from ignite_mnist.settings.config import EXACT_RESUME_SETTINGS, IDENTITY_SETTINGS, TrainConfig, flag_name
from ignite_mnist.storage.checkpoints import (
    checkpoint_iteration,
    load_checkpoint,
    newest_intact_checkpoint,
    saved_settings,
)
from ignite_mnist.storage.run_dir import RunDir

__all__ = [
    "NOT_FROM_CHECKPOINT",
    "ResumePlan",
    "apply_changed_settings",
    "check_resume_compatible",
    "config_for_resume",
    "plan_resume",
    "read_resume_checkpoint",
    "set_aside_later_work",
]


#: Settings a resumed run never takes from its checkpoint (a file names no place it writes to): given again, or
#: from the environment and the defaults.
NOT_FROM_CHECKPOINT = ("mlflow_uri",)


@dataclass
class ResumePlan(SavedCheckpoint):
    """A checkpoint to resume from, read once, and whether the run goes on in the checkpoint's own run
    directory (``in_place``) or a new run starts from it."""

    in_place: bool = False

    @property
    def saved_config(self) -> dict[str, Any]:
        """The settings the checkpoint was written with.

        Raises:
            CheckpointError: it holds none (a custom trainer wrote it).
        """
        saved = self.contents.get("config")
        if not isinstance(saved, dict):
            raise CheckpointError(f"{self.path}: holds no ignite-mnist settings (a custom trainer wrote it?); "
                                  "resume it from the script that wrote it")
        return saved


def _unfinished_runs(output: Path) -> list[RunDir]:
    """Run directories in ``output`` holding a checkpoint and no summary, most recently checkpointed first."""
    runs = [RunDir(d) for d in output.iterdir() if d.is_dir()] if output.is_dir() else []
    candidates = [(r.latest_checkpoint(), r) for r in runs if not r.summary_file.exists()]
    found = [(path.stat().st_mtime, r) for path, r in candidates if path is not None]
    return [r for _, r in sorted(found, key=lambda item: item[0], reverse=True)]


def _resume_folder(config: TrainConfig) -> RunDir:
    """The run ``--resume auto`` continues: ``--run-name``'s, else the most recently checkpointed unfinished one."""
    output = Path(config.output_dir)
    if config.run_name is not None:
        return RunDir(output / config.run_name)
    unfinished = _unfinished_runs(output)
    if not unfinished:
        raise CheckpointError(f"no unfinished run with a checkpoint in {output}; name one with --run-name "
                              "(then --resume auto starts it fresh when it has nothing to resume)")
    _say_once(f"--resume auto: continuing {unfinished[0]}, the most recently checkpointed unfinished run in {output}")
    return unfinished[0]


def _say_once(message: str) -> None:
    """Say what ``--resume auto`` found, once: under torchrun every process reads the checkpoint, rank 0 says it."""
    if is_rank_zero():
        say(message)


def read_resume_checkpoint(config: TrainConfig) -> tuple[Path, dict[str, Any]] | None:
    """The checkpoint ``--resume`` names, read: a path, or ``auto`` for the newest readable one of the run.

    With ``auto`` a damaged newest checkpoint is skipped, with a note naming it;
    a damaged file named by path is refused, naming the newest intact one of its run.
    ``auto`` on a run with no "last" checkpoint yet returns None: the run starts fresh
    (a message says which of the two it does).

    Raises:
        CheckpointError: the named checkpoint is unusable, or every checkpoint of the run is.
    """
    assert config.resume is not None
    if config.resume != "auto":
        path = Path(config.resume)
        try:
            return path, load_checkpoint(path)
        except CheckpointError as error:
            own = RunDir.of_checkpoint(path)
            intact = newest_intact_checkpoint(own.checkpoint_dir) if own is not None and path.is_file() else None
            hint = f"; the newest intact checkpoint of its run is {intact[0]}" if intact and intact[0] != path else ""
            raise CheckpointError(f"{error}{hint}") from None
    run_dir = _resume_folder(config)
    if run_dir.latest_checkpoint() is None:
        _say_once(f"--resume auto: nothing to resume in {run_dir} (no checkpoint yet); starting it fresh")
        return None
    found = newest_intact_checkpoint(run_dir.checkpoint_dir)
    if found is None:
        raise CheckpointError(f"no intact checkpoint to resume in {run_dir} (every last_checkpoint_*.pt is damaged); "
                              "resume from another with --resume PATH, or start afresh without --resume and "
                              "with --overwrite")
    path, checkpoint, skipped = found
    for reason in skipped:
        _say_once(f"--resume auto: skipped {reason.split(': ')[0]} ({reason.split(': ', 1)[1]}); using {path}")
    iteration = SavedCheckpoint(path, checkpoint).iteration
    _say_once(f"--resume auto: continuing {run_dir} from {path.name} (iteration {iteration})")
    return path, checkpoint


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


def _in_place(config: TrainConfig, checkpoint_path: Path) -> bool:
    """Whether ``--resume`` continues the checkpoint's own run (else a new run starts from the checkpoint)."""
    own = RunDir.of_checkpoint(checkpoint_path)
    if config.run_name is None or own is None:
        return False
    return own.path.resolve() == (Path(config.output_dir) / config.run_name).resolve()


def plan_resume(config: TrainConfig) -> ResumePlan | None:
    """Read the checkpoint ``config.resume`` names and check it fits ``config``.

    None without ``--resume``, and for ``--resume auto`` when there is nothing to resume (a fresh start).
    """
    if config.resume is None or (found := read_resume_checkpoint(config)) is None:
        return None
    path, checkpoint = found
    plan = ResumePlan(path, checkpoint, in_place=_in_place(config, path))
    check_resume_compatible(plan.saved_config, config)
    return plan


def config_for_resume(config: TrainConfig, explicit: set[str]) -> tuple[TrainConfig, ResumePlan | None]:
    """The settings of a resumed run: the checkpoint's, overridden by flags given explicitly; and its plan.

    A checkpoint in ``<run>/checkpoints/`` continues that run unless
    ``--run-name``/``--output-dir`` name another folder. ``--resume auto`` with nothing
    to resume gives ``config`` itself, without ``resume`` (a fresh start), and no plan.
    """
    found = read_resume_checkpoint(config)
    if found is None:
        return dataclasses.replace(config, resume=None), None
    path, checkpoint = found
    saved = saved_settings(ResumePlan(path, checkpoint).saved_config, path)
    given = config.to_dict()
    values = {k: v for k, v in saved.items() if k not in NOT_FROM_CHECKPOINT}
    values |= {name: given[name] for name in explicit}
    values |= {"resume": str(path), "overwrite": config.overwrite,
               "output_dir": config.output_dir, "run_name": config.run_name}  # a new run, unless...
    own = RunDir.of_checkpoint(path)
    if own is not None:  # ...the checkpoint's own run goes on, unless flags name another
        values |= {"output_dir": str(own.path.parent), "run_name": own.path.name}
        values |= {name: given[name] for name in explicit & {"output_dir", "run_name"}}
    try:
        resumed = TrainConfig.from_dict(values)
        resumed.validate()
    except ConfigError as error:
        if error.flag not in {flag_name(name) for name in explicit}:  # a value from the checkpoint
            raise CheckpointError(f"{path}: its config {error}; the file is damaged or was not written by "
                                  "ignite-mnist") from None
        raise
    plan = ResumePlan(path, checkpoint, in_place=_in_place(resumed, path))
    check_resume_compatible(saved, resumed)
    return resumed, plan


def set_aside_later_work(run_dir: RunDir, plan: ResumePlan, trains_on: bool = True) -> Path | None:
    """Before a run resumes in place from an older checkpoint, move what it wrote after it aside.

    A resume from iteration N starts a new history after N: the "last" checkpoints
    of the old one would otherwise win the next ``--resume auto``, and a finished
    run's summary would stand for a result the run no longer has. So when newer
    "last" checkpoints exist, or the run had finished and now ``trains_on``, the newer
    checkpoints, ``summary.json`` and the plots move to a sibling ``<run>.old-<N>/``
    (with a copy of ``metrics.jsonl``); nothing is deleted. Returns that folder, or None.
    """
    newer = run_dir.newer_checkpoints(plan.iteration)
    overtaken = any(checkpoint_iteration(path) is not None for path in newer)
    if not overtaken and not (trains_on and run_dir.summary_file.exists()):
        return None
    folder = run_dir.set_aside([*newer, run_dir.summary_file, run_dir.plots_dir], copies=[run_dir.metrics_file])
    say(f"resuming {run_dir} from iteration {plan.iteration}: what it had written after that "
          f"(checkpoints, summary, plots, and a copy of metrics.jsonl) was moved to {folder}")
    return folder


def apply_changed_settings(optimizer: torch.optim.Optimizer, saved: dict[str, Any], config: TrainConfig) -> None:
    """After a resume restored the optimizer, give it the lr/momentum/weight decay ``--allow-config-change`` set."""
    for name in ("lr", "momentum", "weight_decay"):
        if saved.get(name) != getattr(config, name):
            for group in optimizer.param_groups:
                if name in group:
                    group[name] = getattr(config, name)
