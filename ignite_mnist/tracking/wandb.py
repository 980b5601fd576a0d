"""Weights & Biases tracking that never stalls or kills training.

Ignite supplies the logging itself: :class:`ignite.handlers.wandb_logger.WandBLogger`
with its ``OutputHandler`` and ``OptimizerParamsHandler``, attached by
:func:`~ignite_mnist.tracking.base.attach_scalars` on the trainer's iteration axis
(so W&B never drops a row for a step that went backwards). W&B supplies the
charts and files: ``wandb.plot.confusion_matrix``, ``wandb.Table`` / ``wandb.Image``,
``Run.log_model`` and ``Run.watch``. Added here, because neither has it:

* ``auto`` mode: online when credentials exist, offline otherwise;
* a bounded online start: an unreachable server or a bad key falls back to an
  offline run after ``ONLINE_INIT_TIMEOUT`` seconds (W&B waits 90 s), with one warning;
* an offline run keeps what ``wandb sync`` needs in its own folder: W&B stages
  artifact files (the model, tables, images) under ``$WANDB_DATA_DIR``
  (``~/.local/share/wandb``) and writes its service logs under ``$WANDB_CACHE_DIR``;
  for an offline run both point into ``<dir>/wandb/`` (``data/``, ``cache/``) while
  W&B starts and while the test report and the model are logged;
* with ``background`` (the default of :meth:`WandbTracker.in_folder`, so of the managed run and
  ``attach_wandb``), W&B takes no CPU from a short training: the run's id is chosen at once, the
  logger holds the rows (and the best values) in memory, and ``wandb`` is imported and the run
  started in a thread, for an offline run after the last training step (while the last
  validation runs, the test set is evaluated and the plots drawn) or when a checkpoint is
  saved before the end, whichever comes first; such a checkpoint (a point a resume goes on
  from) waits for the run, so that the rows up to it are on disk, in the W&B run the resume
  continues. An online run starts at once (its charts are live). The held rows are then
  logged in order and at their steps; the test report and closing wait for the run, and an
  interrupted or failed training starts it then, so that it holds every row before it closes;
* from :class:`~ignite_mnist.tracking.base.LoggerTracker`: the run starts when the
  trainer starts, after a resume restored its id (a resumed training continues
  the same W&B run); the first W&B error is reported once and training goes on;
  only rank 0 logs; an interrupt or error closes the run with that status.

``wandb`` is imported only when a tracker is attached in a mode other than
``disabled``: importing this module or a disabled tracker costs nothing.
"""

from __future__ import annotations

import contextlib
import netrc
import os
import secrets
import string
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

import numpy as np
import torch
from ignite.engine import Engine, Events
from ignite.handlers.wandb_logger import WandBLogger

from ignite_mnist.console import note
from ignite_mnist.errors import first_line
from ignite_mnist.events import ValidationEvents
from ignite_mnist.registry import WANDB_ENV_MODES, WANDB_MODES, WANDB_WATCH
from ignite_mnist.tracking.base import GuardedLogger, LoggerTracker

if TYPE_CHECKING:
    from ignite_mnist.evaluation import Evaluation
    from ignite_mnist.tracking import BestValues, RunStatus

__all__ = ["DEFAULT_PROJECT", "ONLINE_INIT_TIMEOUT", "WandbTracker", "has_wandb_credentials", "new_run_id",
           "resolve_wandb_mode", "wandb_init_args"]

DEFAULT_PROJECT = "ignite-mnist"
#: Seconds an online start may take before falling back to offline (W&B's own default is 90).
ONLINE_INIT_TIMEOUT = 10.0


def new_run_id() -> str:
    """A W&B run id of the kind W&B makes (8 lowercase letters and digits), chosen before W&B starts.

    Example:
        >>> run_id = new_run_id()
        >>> len(run_id), run_id.isalnum(), run_id == run_id.lower()
        (8, True, True)
    """
    return "".join(secrets.choice(string.ascii_lowercase + string.digits) for _ in range(8))


def has_wandb_credentials() -> bool:
    """Whether W&B could log in without asking: ``$WANDB_API_KEY``, an identity token, or a netrc entry.

    Only local sources are read; nothing is sent anywhere.

    Example:
        >>> os.environ["WANDB_API_KEY"] = "0" * 40
        >>> has_wandb_credentials()
        True
        >>> del os.environ["WANDB_API_KEY"]
    """
    if os.environ.get("WANDB_API_KEY") or os.environ.get("WANDB_IDENTITY_TOKEN_FILE"):
        return True
    host = urlparse(os.environ.get("WANDB_BASE_URL") or "https://api.wandb.ai").hostname
    try:
        return netrc.netrc(os.environ.get("NETRC")).authenticators(host or "") is not None
    except (OSError, netrc.NetrcParseError):
        return False


def resolve_wandb_mode(mode: str) -> str:
    """``auto`` -> ``$WANDB_MODE`` when set, else ``online`` with credentials and ``offline`` without.

    Example:
        >>> resolve_wandb_mode("disabled")
        'disabled'
    """
    if mode not in WANDB_MODES:
        raise ValueError(f"W&B mode must be one of {', '.join(WANDB_MODES)}, got {mode!r}")
    if mode != "auto":
        return mode
    if os.environ.get("WANDB_DISABLED", "").lower() in ("1", "true"):
        return "disabled"
    env_mode = os.environ.get("WANDB_MODE", "").strip().lower()
    if env_mode:
        return WANDB_ENV_MODES[env_mode]  # WandbSettings.validate refused other values
    return "online" if has_wandb_credentials() else "offline"


def wandb_init_args(
    *,
    project: str | None = None,
    entity: str | None = None,
    name: str | None = None,
    tags: str | Sequence[str] | None = None,
    config: Mapping[str, Any] | None = None,
    dir: str | Path | None = None,
) -> dict[str, Any]:
    """``wandb.init`` arguments; None leaves each to its ``$WANDB_*`` variable or our default.

    Example:
        >>> wandb_init_args(name="r", tags="a, b", dir="runs/r")["tags"]
        ['a', 'b']
    """
    if isinstance(tags, str):
        tags = [t.strip() for t in tags.split(",") if t.strip()]
    return {
        "project": project or os.environ.get("WANDB_PROJECT") or DEFAULT_PROJECT,
        "entity": entity,
        "name": name or os.environ.get("WANDB_NAME") or (Path(dir).name if dir is not None else None),
        "tags": list(tags) if tags else None,
        "config": dict(config) if config is not None else None,
        # passed even when it comes from $WANDB_DIR: W&B reads its environment once per process
        "dir": os.environ.get("WANDB_DIR") or (str(dir) if dir is not None else None),
        "job_type": "train",
    }


def _quiet_wandb() -> dict[str, Any]:
    """Unless the user set them: W&B's banner and login lines give way to our one line ($WANDB_SILENT), and
    W&B's own error reporting stays off ($WANDB_ERROR_REPORTING): with a server that accepts connections
    but never answers, its telemetry held the process ~25 s at exit. Set before W&B starts, for the process.

    Returns:
        The ``wandb.Settings`` arguments that go with it.
    """
    os.environ.setdefault("WANDB_ERROR_REPORTING", "false")
    if {"WANDB_SILENT", "WANDB_QUIET"} & set(os.environ):
        return {}
    os.environ["WANDB_SILENT"] = "true"
    return {"silent": True}


#: What W&B keeps outside the run folder unless told: artifact staging (data) and service logs (cache).
_HOMES = {"WANDB_DATA_DIR": "data", "WANDB_CACHE_DIR": "cache"}


@contextlib.contextmanager
def _homes_inside(folder: Path | None) -> Iterator[None]:
    """``$WANDB_DATA_DIR`` and ``$WANDB_CACHE_DIR`` inside ``folder`` for the ``with`` block (None: unchanged).

    W&B reads both when it stages an artifact or starts its service, so this is the
    way to keep an offline run's files (and logs) in the run folder.
    """
    saved = {name: os.environ.get(name) for name in _HOMES}
    if folder is not None:
        os.environ.update({name: str(folder / sub) for name, sub in _HOMES.items()})
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _start_run(mode: str, run_id: str | None, init_args: dict[str, Any], offline_home: Path) -> tuple[Any, str]:
    """Start a W&B run: online falls back to offline within a bounded time; any failure disables W&B."""
    import wandb

    if init_args.get("dir") is not None:
        Path(init_args["dir"]).mkdir(parents=True, exist_ok=True)
    quiet = _quiet_wandb()
    if mode == "online":
        timeout: dict[str, Any] = {} if os.environ.get("WANDB_INIT_TIMEOUT") else {"init_timeout": ONLINE_INIT_TIMEOUT}
        started = time.monotonic()
        try:
            run = wandb.init(mode="online", id=run_id, resume="allow", settings=wandb.Settings(**quiet, **timeout),
                             **init_args)
        except Exception as error:  # noqa: BLE001 - no server, bad key, timeout: all mean "go offline"
            reason = f"W&B online start failed after {time.monotonic() - started:.0f} s ({first_line(error)})"
        else:
            note("info", f"W&B run {run.url}")
            return run, "online"
    try:
        with _homes_inside(offline_home):
            run = wandb.init(mode="offline", id=run_id, resume="allow", settings=wandb.Settings(**quiet), **init_args)
    except Exception as error:  # noqa: BLE001
        note("warning", f"W&B could not start ({first_line(error)}); training goes on without W&B")
        return None, "disabled"
    sync = f"upload it later with: wandb sync {run.settings.sync_dir}"
    if mode == "online":
        note("warning", f"{reason}; logging offline instead, {sync}")
    else:
        note("info", f"W&B run saved offline; {sync}")
    return run, "offline"


class _WandBLogger(GuardedLogger, WandBLogger):
    """Ignite's ``WandBLogger`` on W&B's current run, its handlers guarded; until :meth:`release` (the run
    exists) the rows its handlers log are held, in order, with their steps.

    ``wandb`` is imported by :meth:`release`, not here (Ignite's own ``__init__`` would import it).
    """

    def __init__(self, guard: Any) -> None:
        self.__dict__.update(guard=guard, _wandb=None, held=[], lock=threading.Lock())

    def log(self, data: dict[str, Any], step: int | None = None) -> None:
        """What Ignite's ``OutputHandler`` and ``OptimizerParamsHandler`` call with each row."""
        with self.__dict__["lock"]:
            if self.__dict__["_wandb"] is None:
                self.__dict__["held"].append((dict(data), step))
                return
        self.__dict__["_wandb"].log(data, step=step)

    def release(self) -> None:
        """The run exists: log the rows held so far, then each row as it comes."""
        import wandb

        with self.__dict__["lock"]:
            for data, step in self.__dict__["held"]:
                wandb.log(data, step=step)
            self.__dict__.update(_wandb=wandb, held=[])


class WandbTracker(LoggerTracker):
    """One W&B run and the handlers feeding it (a :class:`~ignite_mnist.tracking.Tracker`).

    A disabled tracker (``mode == "disabled"``, or a rank other than 0) logs
    nothing but still carries the run id through checkpoints.

    Args:
        mode: ``auto``, ``online``, ``offline`` or ``disabled`` (see :func:`resolve_wandb_mode`).
        init_args: ``wandb.init`` arguments (see :func:`wandb_init_args`).
        log_every: iterations between two training-loss rows.
        watch: ``gradients``, ``parameters`` or ``all`` histograms via ``wandb.watch`` (``off``: none).
        run_id: continue this W&B run.
        background: start the run in a thread (see the module's notes); with ``watch`` the run starts at once.

    Attributes:
        mode: ``online``, ``offline`` or ``disabled``: what the run is (after it started).
        run: the ``wandb`` run, or None.
        handles: the attached logging handles (``handle.remove()`` detaches one).
        failed: True once a W&B error stopped logging.
        closed: True once :meth:`finish` ran.
    """

    name = "wandb"
    title = "W&B"

    def __init__(self, *, mode: str = "auto", init_args: dict[str, Any] | None = None, log_every: int = 50,
                 watch: str = "off", run_id: str | None = None, background: bool = False) -> None:
        if watch not in WANDB_WATCH:
            raise ValueError(f"watch must be one of {', '.join(WANDB_WATCH)}, got {watch!r}")
        mode = resolve_wandb_mode(mode)
        super().__init__(log_every=log_every, enabled=mode != "disabled")
        self.mode = mode if self.enabled else "disabled"
        self.init_args = init_args or wandb_init_args()
        self.watch, self.run_id = watch, run_id
        self.background = background and watch == "off"  # wandb.watch hooks the model: not while it trains
        self.run: Any = None
        self._opening: threading.Thread | None = None
        self._deferred = False  # an offline run started in the background: when training ends or a checkpoint needs it
        self._lock = threading.Lock()  # the run's start, and what is held for it (the best values)
        self._best: dict[str, Any] = {}  # the best values while the run has not started

    @classmethod
    def in_folder(cls, folder: str | Path, *, config: Mapping[str, Any] | None = None, log_every: int = 50,
                  mode: str = "auto", project: str | None = None, entity: str | None = None, name: str | None = None,
                  tags: str | Sequence[str] | None = None, watch: str = "off", background: bool = True
                  ) -> WandbTracker:
        """A W&B run keeping its files in ``<folder>/wandb/`` (unless ``$WANDB_DIR`` says otherwise), named as
        ``folder`` is, ``config`` as its config; started beside training (``background``, see :meth:`start`)."""
        init_args = wandb_init_args(project=project, entity=entity, name=name, tags=tags, config=config,
                                    dir=Path(folder))
        return cls(mode=mode, init_args=init_args, log_every=log_every, watch=watch, background=background)

    @property
    def run_dir(self) -> Path | None:
        """The run's local folder (``.../wandb/<offline-run-...>``), the one ``wandb sync`` takes."""
        return Path(self.run.settings.sync_dir) if self.run is not None else None

    @property
    def offline_home(self) -> Path:
        """Where an offline run's staged artifacts and W&B's logs go: ``<dir>/wandb/``, beside its run folders."""
        return Path(self.init_args.get("dir") or ".").resolve() / "wandb"

    def _files_inside(self) -> contextlib.AbstractContextManager[None]:
        """For an offline run: W&B stages files (tables, images, the model) in :attr:`offline_home`."""
        return _homes_inside(self.offline_home if self.mode == "offline" else None)

    def _make_logger(self) -> WandBLogger:
        return _WandBLogger(self.guard)

    def _open(self) -> bool:
        run, mode = _start_run(self.mode, self.run_id, self.init_args, self.offline_home)
        if run is None:
            self.mode = mode
            return False
        with self._lock:  # the rows and best values held so far go to the run first, in order
            self.run, self.mode = run, mode
            self.run_id, self.opened = run.id, True  # opened: the guard lets wandb.watch through
            if self.logger is not None:
                self.logger.release()
            if self._best:
                run.summary.update(self._best)
        if self.watch != "off" and self.model is not None:
            self.guard(lambda: self.run.watch(self.model, log=self.watch, log_freq=self.log_every))()
        return True

    def start(self, engine: Engine | None = None) -> None:
        """Open the W&B run (once); with ``background``, in a thread (see the module's notes): the run id is
        chosen now, the rows logged before the run exists are held and logged, in order and at their steps,
        once it does; the test report and closing wait for it."""
        if not self.background or self.started or self.closed or not self.enabled:
            super().start(engine)
            return
        self.started = self.opened = True  # opened: the handlers log (into the logger's hold) from now on
        if self.mode == "online":  # W&B names the run (an offline fallback gets another name)
            self._begin_opening()
            return
        self._deferred = True
        self.run_id = self.run_id or new_run_id()  # what checkpoints hold, before W&B has started

    def _begin_opening(self, engine: Engine | None = None) -> None:
        """Begin the background run's start now (once): training ended, or a checkpoint or a report needs it."""
        with self._lock:
            if not (self.background and self.enabled and self.started) or self._opening is not None:
                return
            self._opening = threading.Thread(target=self._open_behind, name="wandb-start", daemon=True)
            self._opening.start()

    def _open_behind(self) -> None:
        try:
            self.opened = self._open()
        except Exception as error:  # noqa: BLE001 - a tracker must never end a training
            self.opened = False
            self._could_not_start(error)

    def _ready(self) -> bool:
        """Wait until a run starting in the background has started (beginning its start if it had not begun) or
        failed to; whether there is one."""
        self._begin_opening()
        if self._opening is not None:
            self._opening.join()
        return self.run is not None

    def _log_best(self, record: BestValues) -> None:
        """``best_<metric>`` in the run's summary; held until the run exists (the latest values win)."""
        best = {f"best_{k}": v for k, v in record.best.items()}
        with self._lock:
            if self.run is None:
                self._best = best
                return
        self.run.summary.update(best)

    def attach(
        self,
        trainer: Engine,
        *,
        evaluators: Mapping[str, Engine] | None = None,
        optimizer: torch.optim.Optimizer | None = None,
        model: torch.nn.Module | None = None,
        record: BestValues | None = None,
        epoch_metrics: Sequence[str] = ("train_loss",),
    ) -> None:
        """Log ``trainer`` (and its evaluators) to the run, all at the trainer's iteration.

        The scalars of :func:`~ignite_mnist.tracking.base.attach_scalars`; with a
        ``record``, ``best_<metric>`` in the summary after each validation.
        """
        super().attach(trainer, evaluators=evaluators, optimizer=optimizer, model=model, epoch_metrics=epoch_metrics)
        if self.enabled and record is not None:
            self._on(trainer, ValidationEvents.VALIDATION_COMPLETED, lambda _: self._log_best(record))
        if self.enabled and self.background:  # training's last step (or an early stop) is done: an offline run
            # starts while the last validation, the checkpoint and the report are made
            last_step = Events.ITERATION_COMPLETED(event_filter=lambda engine, _: self._training_ends_here())
            for event in (last_step, Events.COMPLETED):
                self.handles.append(trainer.add_event_handler(event, self._begin_opening))

    def log_test_report(self, evaluation: Evaluation) -> None:
        """Log the test metrics, the confusion matrix and the misclassified digits, once the run has started."""
        self._ready()
        super().log_test_report(evaluation)

    def log_model(self, path: str | Path | None) -> None:
        """Keep the checkpoint at ``path`` as the run's model artifact, once the run has started."""
        self._ready()
        super().log_model(path)

    def finish(self, status: RunStatus = "finished", exit_code: int = 0) -> None:
        """Close the run with ``status`` once it has started (flushes everything); later calls do nothing."""
        self._ready()
        super().finish(status, exit_code)

    def _log_test_report(self, evaluation: Evaluation) -> None:
        """Log ``test/<metric>``, the confusion matrix and the misclassified digits; ``test_<metric>``
        in the summary."""
        import wandb

        names = list(evaluation.classes)
        table = wandb.Table(columns=["image", "label", "prediction", "confidence"])
        for wrong in evaluation.misclassified:
            caption = f"{names[wrong.label]} -> {names[wrong.prediction]}"
            pixels = np.rint(np.asarray(wrong.image) * 255).astype(np.uint8)  # (28, 28) grayscale, as W&B reads it
            table.add_data(wandb.Image(pixels, caption=caption), names[wrong.label], names[wrong.prediction],
                           round(wrong.confidence, 4))
        y_true, y_pred = _labelled_pairs(evaluation.confusion_matrix)
        matrix = wandb.plot.confusion_matrix(y_true=y_true, preds=y_pred, class_names=names)
        scalars = {"accuracy": evaluation.accuracy, "loss": evaluation.loss}
        with self._files_inside():
            self.run.log({f"test/{k}": v for k, v in scalars.items()}
                         | {"test/confusion_matrix": matrix, "test/misclassified": table}, step=self.step())
        self.run.summary.update({f"test_{k}": v for k, v in scalars.items()})

    def _log_model(self, path: Path) -> None:
        """Record the checkpoint at ``path`` as the run's model artifact ``model-<run id>`` (best, latest)."""
        with self._files_inside():
            self.run.log_model(path=str(path), name=f"model-{self.run.id}", aliases=["best", "latest"])

    def _close(self, status: RunStatus, exit_code: int) -> None:
        if not self.failed:
            self.run.summary["status"] = status
        self.run.finish(exit_code=exit_code)

    def state_dict(self) -> dict[str, Any]:
        """The run id, so that a resume continues this run. A checkpoint before the end of training waits for
        the run (see the module's notes); at the end of training a background run begins to start, its id known."""
        if self._deferred and self._training_ends_here():
            self._begin_opening()
        else:
            self._ready()
        return {"run_id": self.run_id}

    def _training_ends_here(self) -> bool:
        """Whether the trainer is at its last iteration (a checkpoint there is no point to resume training from)."""
        state = self.trainer.state if self.trainer is not None else None
        return (state is not None and state.epoch_length is not None and state.max_epochs is not None
                and state.iteration >= state.epoch_length * state.max_epochs)

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Take the run id of a resumed run (before the run starts; a live run keeps its own)."""
        if self.run is None:
            self.run_id = state.get("run_id")


def _labelled_pairs(confusion: Sequence[Sequence[int]]) -> tuple[list[int], list[int]]:
    """(true, predicted) class lists for ``wandb.plot.confusion_matrix``, rebuilt from the counts.

    Example:
        >>> _labelled_pairs([[2, 0], [1, 0]])
        ([0, 0, 1], [0, 0, 0])
    """
    counts = torch.as_tensor(confusion).long()
    classes = torch.arange(counts.shape[0])
    true = classes.repeat_interleave(counts.sum(dim=1))
    predicted = torch.cat([classes.repeat_interleave(row) for row in counts])
    return true.tolist(), predicted.tolist()
