"""``ignite-mnist sweep``: a search over training settings on Optuna; every trial an ordinary run directory.

```
<output-dir>/<sweep name>/
    sweep.yaml       the sweep file it was started from (a restart with another file is refused)
    sweep.json       the study's name and its storage (when --storage named one)
    study.db         the Optuna study (SQLite), unless --storage put it elsewhere
    trial-0000/      each trial's run directory: config.json, metrics.jsonl, checkpoints, summary.json
    workers/         <host>:<pid>.lock, held by each live worker process of this folder
    .lock            held while a worker takes its next trial
    study.db-claims.lock
                     held, beside a SQLite study wherever it is, while any worker of the study
                     (in any folder) counts its trials and asks for a new one
```

How a sweep goes:

1. :func:`open_sweep` checks the folder and opens the study (created on first use)
   with the sampler of the file's ``method`` and the pruner of ``--pruner``
   (:data:`~ignite_mnist.registry.SWEEP_METHODS`, :data:`~ignite_mnist.registry.PRUNERS`).
2. Each worker process (:func:`work`) takes a trial under the folder's lock and
   the study's (:func:`claim_trial`, :meth:`SweepDir.lock`): first a running trial whose worker on this machine is
   gone (killed), which goes on in its own run directory from its newest
   checkpoint; else a new one from the sampler while the study holds fewer
   trials than the sweep runs. Finished trials are never run again, and a trial
   keeps its number when it is resumed, so none is counted twice.
3. A trial is the training command line ``wandb agent`` would build
   (:meth:`~ignite_mnist.experiments.sweep_spec.SweepSpec.trial_args`), run in the worker's
   process with :class:`~ignite_mnist.handlers.TrialPruning` attached
   (:func:`run_trial`); its value is the sweep metric of its validations.
4. ``--jobs N`` starts N workers (:func:`run_workers`); they share the study
   through its storage, as workers on other machines do with ``--storage``.

Optuna owns the study, the samplers and the pruners; nothing here schedules.
Importing this module imports neither torch nor Ignite (the trials do), so the
parent of ``--jobs N`` and ``compare`` start at once.
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal, cast

import optuna
from optuna.distributions import BaseDistribution, CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import FrozenTrial, TrialState

from ignite_mnist.console import note
from ignite_mnist.errors import (
    EXIT_SIGINT,
    EXIT_SIGTERM,
    ConfigError,
    Interrupted,
    SweepError,
    TrainingError,
    first_line,
)
from ignite_mnist.experiments.compare import Comparison, RunResult, find_runs
from ignite_mnist.experiments.sweep_spec import EarlyTerminate, Parameter, SweepSpec
from ignite_mnist.experiments.sweep_storage import (
    Heartbeat,
    counted_trials,
    keep_alive,
    open_storage,
    quiet_heartbeat_warnings,
    record_heartbeat,
    study_lock,
)
from ignite_mnist.limits import MAX_SETTINGS_FILE_BYTES
from ignite_mnist.registry import AUTO_PRUNER, PRUNERS, SWEEP_DISTRIBUTIONS, SWEEP_METHODS
from ignite_mnist.settings.config_args import parse_train_args
from ignite_mnist.storage.files import (
    FILE,
    FOLDER,
    check_entries,
    lock_held,
    locked,
    own_folder,
    write_json,
    write_text,
)
from ignite_mnist.storage.reader import read_json
from ignite_mnist.storage.run_dir import RunDir

__all__ = [
    "Claim", "Heartbeat", "SweepDir", "claim_trial", "open_sweep", "report", "run_trial", "run_workers",
    "trial_name", "trial_states", "work",
]

#: The median pruner judges a trial once this many trials have completed.
MEDIAN_STARTUP_TRIALS = 2
#: Seconds a new trial may stay without its worker's name before another worker takes it up.
UNCLAIMED_SECONDS = 60
#: Seconds (at most) between two looks at the study of a worker waiting for other workers' trials to end.
WAIT_SECONDS = 2
#: The trial's user attribute naming the worker process that runs it: host, pid and sweep folder.
WORKER = "worker"
#: The study's user attribute holding the sweep file it was started from.
SPEC = "sweep_file"
#: What a worker says of a trial another worker failed as stale while it ran (its heartbeat was late).
STALE = ("another worker marked it failed (no heartbeat for longer than --grace-period) and retries it; "
         "raise --grace-period on a busy machine")
#: The advice after an interruption or a failure.
AGAIN = "start the sweep again (the same command) to go on where it stopped"
#: What the trackers read to group runs (unless set already): each worker sets them to the sweep's name.
TRACKER_GROUPS = ("WANDB_RUN_GROUP", "MLFLOW_EXPERIMENT_NAME")

Say = Callable[[str], None]


def _say(message: str) -> None:
    print(message, flush=True)


def trial_name(number: int) -> str:
    """A trial's run directory name.

    Example:
        >>> trial_name(3)
        'trial-0003'
    """
    return f"trial-{number:04d}"


# --- what the sweep file's names stand for (builders the registries name) ---------------------------------------


def _integers(*values: Any) -> bool:
    return all(isinstance(v, int) and not isinstance(v, bool) for v in values)


def categorical(parameter: Parameter) -> BaseDistribution:
    """``constant`` and ``categorical``: one of ``values``."""
    return CategoricalDistribution(list(parameter.values))


def _range(parameter: Parameter) -> tuple[Any, Any]:
    """``min`` and ``max`` of a numeric parameter, as the sweep file gave them (it checked both are there)."""
    assert parameter.low is not None and parameter.high is not None
    return parameter.low, parameter.high


def int_uniform(parameter: Parameter) -> BaseDistribution:
    """An integer from ``min`` to ``max``."""
    return IntDistribution(*_range(parameter))


def uniform(parameter: Parameter) -> BaseDistribution:
    """A number from ``min`` to ``max``."""
    return FloatDistribution(*_range(parameter))


def log_uniform_values(parameter: Parameter) -> BaseDistribution:
    """A number from ``min`` to ``max`` on a log scale."""
    return FloatDistribution(*_range(parameter), log=True)


def q_uniform(parameter: Parameter) -> BaseDistribution:
    """A multiple of ``q`` (default 1) from ``min`` to ``max``: integers when all three are."""
    low, high = _range(parameter)
    q: Any = parameter.q if parameter.q is not None else 1
    if _integers(low, high, q):
        return IntDistribution(low, high, step=q)
    return FloatDistribution(low, high, step=q)


def q_log_uniform_values(parameter: Parameter) -> BaseDistribution:
    """Integers on a log scale; as W&B's own Optuna scheduler, a float log scale where Optuna has no stepped one."""
    low, high = _range(parameter)
    q = parameter.q if parameter.q is not None else 1
    if q != 1 or low < 1:
        return FloatDistribution(low, high, log=True)
    return IntDistribution(low, high, log=True, step=int(q))


def distributions(spec: SweepSpec) -> dict[str, BaseDistribution]:
    """The Optuna search space of a sweep file, as W&B's Optuna scheduler maps it."""
    return {name: SWEEP_DISTRIBUTIONS.load(p.kind)(p) for name, p in spec.parameters.items()}


class _GridSampler(optuna.samplers.GridSampler):
    """Optuna's grid sampler without its ``study.stop()`` at the grid's end, which works only inside
    ``Study.optimize``: the sweep counts its trials itself
    (:meth:`~ignite_mnist.experiments.sweep_spec.SweepSpec.budget`)."""

    def after_trial(self, study: optuna.Study, trial: Any, state: TrialState, values: Any) -> None:
        pass


def grid_sampler(spec: SweepSpec) -> optuna.samplers.BaseSampler:
    """``grid``: every combination of the parameters' values, once."""
    return _GridSampler(spec.grid(), seed=0)  # one seed in every worker: one grid order


def random_sampler(spec: SweepSpec) -> optuna.samplers.BaseSampler:
    """``random``: independent draws."""
    return optuna.samplers.RandomSampler()


def tpe_sampler(spec: SweepSpec) -> optuna.samplers.BaseSampler:
    """``bayes``: Optuna's Tree-structured Parzen Estimator (W&B uses a Gaussian process)."""
    return optuna.samplers.TPESampler()


def _terminate(spec: SweepSpec) -> EarlyTerminate:
    return spec.early_terminate or EarlyTerminate(min_iter=1)


def halving_pruner(spec: SweepSpec) -> optuna.pruners.BasePruner:
    """Successive halving from validation ``min_iter``, keeping the best 1/``eta`` at each rung (W&B's hyperband)."""
    terminate = _terminate(spec)
    return optuna.pruners.SuccessiveHalvingPruner(min_resource=terminate.min_iter, reduction_factor=terminate.eta)


def median_pruner(spec: SweepSpec) -> optuna.pruners.BasePruner:
    """Stop a trial worse than the median of earlier trials at the same validation, from ``min_iter`` on."""
    return optuna.pruners.MedianPruner(n_startup_trials=MEDIAN_STARTUP_TRIALS,
                                       n_warmup_steps=_terminate(spec).min_iter - 1)


def no_pruner(spec: SweepSpec) -> optuna.pruners.BasePruner:
    """Every trial runs to its end."""
    return optuna.pruners.NopPruner()


# --- the sweep folder -------------------------------------------------------------------------------------------


class SweepDir:
    """A sweep's folder: its files, its trials' run directories, its locks."""

    SPEC = "sweep.yaml"
    INFO = "sweep.json"
    STUDY = "study.db"
    WORKERS = "workers"
    LOCK = ".lock"

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        #: The study's database, once :func:`open_sweep` has opened it: :meth:`lock` takes the study's lock there.
        self.database: optuna.storages.RDBStorage | None = None

    def __str__(self) -> str:
        return str(self.path)

    @classmethod
    def holds_sweep(cls, path: str | Path) -> bool:
        """Whether ``path`` is a sweep's folder (it has a ``sweep.json``, whatever that turns out to be)."""
        return os.path.lexists(Path(path) / cls.INFO)

    def trial_dir(self, number: int) -> RunDir:
        return RunDir(self.path / trial_name(number))

    def read_info(self) -> dict[str, Any]:
        """``sweep.json`` (a regular file inside the folder, at most 1 MiB), or ``{}`` when missing or damaged.

        Raises:
            UnsafeFileError: it is a link out of the folder, a pipe, a device, or too big.
        """
        try:
            values = read_json(self.path / self.INFO, MAX_SETTINGS_FILE_BYTES, inside=self.path)
        except (OSError, ValueError):
            return {}
        return values if isinstance(values, dict) else {}

    def storage(self) -> str:
        """The study's database URL: the one recorded, else SQLite in the folder.

        Raises:
            ConfigError: the recorded one is not a URL, or a SQLite file outside the folder: a path a file names
                is used only when the command line names it too (``--storage``).
        """
        recorded = self.read_info().get("storage")
        own = f"sqlite:///{(self.path / self.STUDY).resolve()}"
        if recorded is None or recorded == own:
            return own
        if not isinstance(recorded, str) or recorded.startswith("sqlite"):
            raise ConfigError("--storage", f"{self.path / self.INFO} names the study database {str(recorded)[:200]!r}"
                              f" outside the sweep's folder; pass --storage with it if you trust it")
        return recorded

    def check_entries(self) -> None:
        """Refuse a folder whose own names hold a link, a pipe or a device, before anything is written there."""
        check_entries(self.path, {self.SPEC: FILE, self.INFO: FILE, self.STUDY: FILE, self.WORKERS: FOLDER})

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """Hold the folder's lock, then the study's (:func:`study_lock`: every worker's of the study, in any folder
        or on any machine, once the study is open), waiting for each, while the ``with`` block runs."""
        with locked(self.path / self.LOCK):
            if self.database is None:
                yield
                return
            with study_lock(self.database, self.path.name):
                yield

    @contextlib.contextmanager
    def worker(self) -> Iterator[dict[str, Any]]:
        """Register this process as a worker of this folder (its lock held until it exits); yield who it is.

        The result, ``{"host", "pid", "folder"}``, is what each of its trials records as ``worker``.
        """
        me = {"host": socket.gethostname(), "pid": os.getpid(), "folder": str(self.path.resolve())}
        path = self._worker_lock(me)
        own_folder(path.parent, self.path)
        with locked(path):
            try:
                yield me
            finally:
                path.unlink(missing_ok=True)

    def _worker_lock(self, worker: dict[str, Any]) -> Path:
        return self.path / self.WORKERS / f"{worker['host']}:{worker['pid']}.lock"

    def orphaned(self, trial: FrozenTrial, me: dict[str, Any]) -> bool:
        """Whether a running trial of this folder has lost its worker process (killed, or gone for any reason).

        Only this machine's workers of this folder can be told, and only here can the
        trial go on (its run directory is here). A worker's lock is free once it exits,
        however it exits. A trial with this process's own pid is an earlier process's
        (the pid came round again): this one runs no trial while it looks.
        """
        worker = trial.user_attrs.get(WORKER)
        if worker is None:  # its worker died between creating it and naming itself: it never trained
            started = trial.datetime_start
            return started is not None and (datetime.now() - started).total_seconds() > UNCLAIMED_SECONDS
        if not isinstance(worker, dict) or (worker.get("host"), worker.get("folder")) != (me["host"], me["folder"]):
            return False
        if worker.get("pid") == me["pid"]:
            return True
        return isinstance(worker.get("pid"), int) and not lock_held(self._worker_lock(worker))


# --- the study ----------------------------------------------------------------------------------------------------


def _check_spec_copy(sweep: SweepDir, spec: SweepSpec) -> None:
    import yaml

    copy = sweep.path / SweepDir.SPEC
    if copy.is_file():
        if SweepSpec.load(copy, inside=sweep.path).raw != spec.raw:
            raise ConfigError(spec.where, f"{sweep} holds a sweep started from another file ({copy}); start it "
                              "again with that file, or choose another --name")
        return
    write_text(copy, yaml.safe_dump(spec.raw, sort_keys=False))


def open_sweep(spec: SweepSpec, output_dir: str | Path, name: str | None = None, storage: str | None = None,
               pruner: str = AUTO_PRUNER, heartbeat: Heartbeat | None = None) -> tuple[SweepDir, optuna.Study]:
    """Create or reopen the sweep's folder and its study (refused when either was started from another file).

    ``heartbeat`` says how the trials of a dead worker are found and retried (default: not at all).
    """
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    quiet_heartbeat_warnings()
    sweep = SweepDir(Path(output_dir) / (name or spec.name))
    sweep.path.mkdir(parents=True, exist_ok=True)
    sweep.check_entries()
    _check_spec_copy(sweep, spec)
    recorded = sweep.read_info().get("storage")
    if storage is not None and recorded is not None and storage != recorded:
        raise ConfigError("--storage", f"{sweep} keeps its study in another database; leave --storage out to use it")
    if pruner == AUTO_PRUNER:
        pruner = "halving" if spec.early_terminate is not None else "none"
    sweep.database = open_storage(storage or sweep.storage(), heartbeat)
    study = optuna.create_study(
        storage=sweep.database, study_name=sweep.path.name,
        direction=cast(Literal["minimize", "maximize"], spec.goal),  # the sweep file's check: one of the two
        sampler=SWEEP_METHODS.load(spec.method)(spec), pruner=PRUNERS.load(pruner)(spec), load_if_exists=True,
    )
    started_from = study.user_attrs.get(SPEC)
    if started_from is None:
        study.set_user_attr(SPEC, spec.raw)
    elif started_from != json.loads(json.dumps(spec.raw)):
        raise ConfigError(spec.where, f"study {study.study_name} was started from another sweep file; use that "
                          "file, or another --name")
    if not SweepDir.holds_sweep(sweep.path):
        write_json(sweep.path / SweepDir.INFO, {"study": study.study_name, "storage": storage})
    return sweep, study


# --- trials -------------------------------------------------------------------------------------------------------


@dataclass
class Claim:
    """A trial a worker took: new, or resumed after its worker was gone (with the steps it had reported)."""

    trial: optuna.Trial
    resumed: bool = False
    reported: dict[int, float] = field(default_factory=dict)


def claim_trial(study: optuna.Study, sweep: SweepDir, worker: dict[str, Any], budget: int,
                space: dict[str, BaseDistribution]) -> Claim | None:
    """The next trial for ``worker``: an orphaned one first, else a new one; None once the study holds ``budget``.

    First the trials whose heartbeat stopped (a worker died anywhere) are failed, each with
    a retry added that the next ``ask`` hands out (Optuna's ``fail_stale_trials``).
    """
    with sweep.lock():
        optuna.storages.fail_stale_trials(study)
        for frozen in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            if sweep.orphaned(frozen, worker):
                # Optuna has no public way to take up a running trial; its Trial is built from the trial's id
                trial = optuna.Trial(study, frozen._trial_id)
                trial.set_user_attr(WORKER, worker)
                record_heartbeat(study, trial)
                return Claim(trial, resumed=True, reported=dict(frozen.intermediate_values))
        waiting = study.get_trials(deepcopy=False, states=(TrialState.WAITING,))
        if not waiting and counted_trials(study) >= budget:
            return None
        trial = study.ask(space)  # a retry waiting first (it keeps its parameters), else a new one
        trial.set_user_attr(WORKER, worker)
        record_heartbeat(study, trial)
        return Claim(trial)


def _trial_args(spec: SweepSpec, sweep: SweepDir, claim: Claim) -> list[str]:
    """The trial's command line: no progress display unless the file sets one, the file's settings, then the sweep's."""
    run_dir = sweep.trial_dir(claim.trial.number)
    args = ["--progress=none", *spec.trial_args(claim.trial.params),
            f"--output_dir={sweep.path}", f"--run_name={run_dir.path.name}"]
    if claim.resumed and run_dir.latest_checkpoint() is not None:
        args.append("--resume=auto")
    elif claim.resumed and run_dir.holds_run():  # it was stopped before its first checkpoint
        args.append("--overwrite=True")
    return args


def _tell(study: optuna.Study, spec: SweepSpec, sweep: SweepDir, trial: optuna.Trial, say: Say) -> None:
    """Record how a trial ended: pruned, or complete with its value read from its run directory."""
    from ignite_mnist.handlers.pruning import PRUNED_AT  # torch: trials are run where this is called
    if PRUNED_AT in trial.user_attrs:
        study.tell(trial, state=TrialState.PRUNED)
        say(f"trial {trial.number}: pruned at validation {trial.user_attrs[PRUNED_AT]}")
        return
    result = RunResult.read(sweep.trial_dir(trial.number), trial_name(trial.number))
    value = result.value(("best_" if spec.uses_best else "") + spec.monitor)
    if value is None:
        study.tell(trial, state=TrialState.FAIL)
        say(f"trial {trial.number}: failed: it has no validation of {spec.monitor}")
        return
    study.tell(trial, value)
    say(f"trial {trial.number}: complete, {spec.metric} {value:.4f}")


def run_trial(study: optuna.Study, spec: SweepSpec, sweep: SweepDir, claim: Claim, say: Say = _say) -> None:
    """Train one trial in this process and record its end; an interrupted trial stays running (to be resumed).

    The trial's heartbeat goes on from its start (a worker's first trial imports torch first) to its end.
    """
    try:
        with keep_alive(study, claim.trial):
            trained = _train(study, spec, sweep, claim, say)
        if trained:
            _tell(study, spec, sweep, claim.trial, say)
    except optuna.exceptions.UpdateFinishedTrialError:  # another worker failed it as stale: it retries it
        say(f"trial {claim.trial.number}: {STALE}")


def _train(study: optuna.Study, spec: SweepSpec, sweep: SweepDir, claim: Claim, say: Say) -> bool:
    """Train the trial; False when it ended here already (failed)."""
    from ignite_mnist.handlers.pruning import PRUNED_AT, attach_trial_pruning
    from ignite_mnist.training.managed import run

    trial = claim.trial
    if claim.resumed and PRUNED_AT in trial.user_attrs:  # it was pruned before its worker was gone
        return True
    say(f"trial {trial.number}: {'resumed' if claim.resumed else 'started'} in "
        f"{sweep.trial_dir(trial.number)}: {shlex.join(spec.trial_args(trial.params))}")

    def attach(parts: Any) -> None:  # run(attach=...): the pruning handler (it saves itself in the checkpoints)
        attach_trial_pruning(parts.trainer, trial, spec.monitor, claim.reported)

    try:
        check_entries(sweep.path, {trial_name(trial.number): FOLDER})  # a trial trains in the folder, not a link
        config, plan = parse_train_args(_trial_args(spec, sweep, claim), with_plan=True)
        run(config, resume=plan, attach=attach)
    except Interrupted as error:  # it stays running: the sweep resumes it when started again
        saved = str(error).partition("; resume with:")[0]
        raise Interrupted(f"trial {trial.number}: {saved}; {AGAIN}", error.signal_number) from None
    except KeyboardInterrupt:
        raise
    except TrainingError as error:  # this trial's settings do not train (a NaN loss): the sweep goes on
        study.tell(trial, state=TrialState.FAIL)
        say(f"trial {trial.number}: failed: {first_line(error)}")
        return False
    except BaseException:  # a bad setting, missing data, a bug: recorded, then reported by the command
        study.tell(trial, state=TrialState.FAIL)
        raise
    return True


def work(study: optuna.Study, spec: SweepSpec, sweep: SweepDir, budget: int, say: Say = _say,
         heartbeat: Heartbeat | None = None) -> None:
    """Run trials in this process until the study holds ``budget`` trials and none is left orphaned here.

    With heartbeats, a worker with nothing left to take waits while other workers' trials
    run: should one of those workers die, its trial is retried here.
    """
    space = distributions(spec)
    for variable in TRACKER_GROUPS:  # the tracked runs of one sweep: one W&B group, one MLflow experiment
        os.environ.setdefault(variable, sweep.path.name)
    with sweep.worker() as worker:
        while True:
            claim = claim_trial(study, sweep, worker, budget, space)
            if claim is not None:
                run_trial(study, spec, sweep, claim, say)
            elif heartbeat is not None and heartbeat.enabled and study.get_trials(states=(TrialState.RUNNING,)):
                time.sleep(min(WAIT_SECONDS, heartbeat.interval))
            else:
                return


def run_workers(jobs: int, worker_args: list[str]) -> None:
    """Start ``jobs`` worker processes (``ignite-mnist sweep ... --worker``) and wait for them all.

    A SIGTERM to this process is passed on to the workers (each saves its trial and stops);
    Ctrl-C reaches them from the terminal.

    Raises:
        Interrupted: the workers were stopped by a signal.
        SweepError: a worker failed.
    """
    command = [sys.executable, "-m", "ignite_mnist", "sweep", *worker_args, "--worker"]
    processes = [subprocess.Popen(command) for _ in range(jobs)]

    def pass_on(number: int, _: Any) -> None:
        for process in processes:
            process.send_signal(number)

    previous = signal.signal(signal.SIGTERM, pass_on)
    try:
        codes = [process.wait() for process in processes]
    except KeyboardInterrupt:  # the terminal interrupted the workers too: each saves its trial and stops
        for process in processes:
            process.wait()
        raise
    finally:
        signal.signal(signal.SIGTERM, previous)
        for process in processes:
            if process.poll() is None:
                process.terminate()
                process.wait()
    stopped = [code for code in codes if code in (EXIT_SIGINT, EXIT_SIGTERM)]
    if stopped:
        raise Interrupted(f"{len(stopped)} of {jobs} workers stopped by a signal; {AGAIN}", stopped[0] - 128)
    failed = [code for code in codes if code]
    if failed:
        raise SweepError(f"{len(failed)} of {jobs} workers failed (exit codes {', '.join(map(str, failed))}); {AGAIN}")


# --- reading a sweep back -------------------------------------------------------------------------------------


def _states(study: optuna.Study) -> dict[str, str]:
    return {trial_name(t.number): t.state.name.lower() for t in study.get_trials(deepcopy=False)}


def trial_states(path: str | Path) -> dict[str, str] | None:
    """``{trial folder: state}`` of a sweep folder's study (None for a folder that is not a sweep)."""
    if not SweepDir.holds_sweep(path):
        return None
    sweep = SweepDir(path)
    sweep.check_entries()  # the database opened below is a file of the folder, not a link or a pipe
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    name = sweep.read_info().get("study")
    try:
        storage = sweep.storage()
    except ConfigError as error:  # a database outside the folder: not opened; its trials count as plain runs
        note("note", f"{path}: its study is not read ({error.message.partition('; ')[0]})")
        return None
    try:
        study = optuna.load_study(study_name=name if isinstance(name, str) else sweep.path.name,
                                  storage=open_storage(storage))
    except KeyError as error:
        raise SweepError(f"{path}: its study database holds no study {first_line(error)}; the folder is damaged "
                         "or its database was replaced") from None
    return _states(study)


def report(study: optuna.Study, spec: SweepSpec, sweep: SweepDir) -> str:
    """The sweep's end: its trials compared (those in this folder), then the best trial's command line."""
    states = _states(study)
    counts = {state: list(states.values()).count(state) for state in dict.fromkeys(states.values())}
    lines = [f"sweep {sweep}: {len(states)} trials ({', '.join(f'{n} {s}' for s, n in counts.items())})"]
    if any(RunDir(sweep.path / name).holds_run() for name in states):  # with --storage, some ran elsewhere
        lines.append(Comparison.of(find_runs([sweep.path], lambda _: states)).format())
    try:
        best = study.best_trial
    except ValueError:
        return "\n".join([*lines, "no trial has completed"])
    lines += [f"best: {trial_name(best.number)} ({spec.metric} {best.value:.4f}), trained by:",
              "  " + shlex.join(["ignite-mnist", *spec.trial_args(best.params)])]
    run_dir = sweep.trial_dir(best.number)
    if run_dir.holds_run():
        again = ["--config", str(run_dir.config_file), "--output-dir", str(sweep.path.parent),
                 "--run-name", f"{sweep.path.name}-best"]
        lines += ["the same settings again, in a new run directory:", "  " + shlex.join(["ignite-mnist", *again])]
    return "\n".join(lines)
