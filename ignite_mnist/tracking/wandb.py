"""Weights & Biases tracking that never stalls or kills training.

Ignite supplies the logging itself: :class:`ignite.handlers.wandb_logger.WandBLogger`
with its ``OutputHandler`` (metrics, loss) and ``OptimizerParamsHandler`` (learning
rate), all on one step axis, the trainer's iteration
(``global_step_from_engine(trainer, Events.ITERATION_COMPLETED)``), so W&B never
drops a row for a step that went backwards. W&B supplies the charts and files:
``wandb.plot.confusion_matrix``, ``wandb.Table`` / ``wandb.Image``,
``Run.log_model`` and ``Run.watch``. Added here, because neither has it:

* ``auto`` mode: online when credentials exist, offline otherwise;
* a bounded online start: an unreachable server or a bad key falls back to an
  offline run after ``ONLINE_INIT_TIMEOUT`` seconds (W&B waits 90 s), with one warning;
* a guard around every handler: the first W&B error is reported once, W&B
  logging stops, training goes on;
* the run starts when the trainer starts (or at :meth:`WandbTracker.start`), after
  a resume restored its id, so a resumed training continues the same W&B run;
  only rank 0 logs; an interrupt or error out of ``trainer.run`` closes the run
  with that status.

``wandb`` is imported only when a tracker is attached in a mode other than
``disabled``: importing this module or a disabled tracker costs nothing.
"""

from __future__ import annotations

import netrc
import os
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

import ignite.distributed as idist
import torch
from ignite.engine import Engine, Events
from ignite.engine.events import RemovableEventHandle
from ignite.handlers import global_step_from_engine
from ignite.handlers.wandb_logger import OptimizerParamsHandler, OutputHandler, WandBLogger

from ignite_mnist.console import note
from ignite_mnist.errors import Interrupted, first_line
from ignite_mnist.events import ValidationEvents, on_exception
from ignite_mnist.registry import WANDB_ENV_MODES, WANDB_MODES, WANDB_WATCH

if TYPE_CHECKING:
    from ignite_mnist.config import TrainConfig
    from ignite_mnist.evaluation import Evaluation
    from ignite_mnist.handlers.record import RunRecord
    from ignite_mnist.run_dir import RunDir
    from ignite_mnist.tracking import RunStatus

__all__ = ["DEFAULT_PROJECT", "ONLINE_INIT_TIMEOUT", "WandbTracker", "has_wandb_credentials",
           "resolve_wandb_mode", "wandb_init_args"]

DEFAULT_PROJECT = "ignite-mnist"
#: Seconds an online start may take before falling back to offline (W&B's own default is 90).
ONLINE_INIT_TIMEOUT = 10.0


def _say(kind: str, message: str) -> None:
    note(kind, message)


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
        return WANDB_ENV_MODES[env_mode]  # TrainConfig.validate refused other values
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


def _quiet_wandb() -> dict[str, bool]:
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


def _start_run(mode: str, run_id: str | None, init_args: dict[str, Any]) -> tuple[Any, str]:
    """Start a W&B run: online falls back to offline within a bounded time; any failure disables W&B."""
    import wandb

    if init_args.get("dir") is not None:
        Path(init_args["dir"]).mkdir(parents=True, exist_ok=True)
    quiet = _quiet_wandb()
    if mode == "online":
        timeout = {} if os.environ.get("WANDB_INIT_TIMEOUT") else {"init_timeout": ONLINE_INIT_TIMEOUT}
        started = time.monotonic()
        try:
            run = wandb.init(mode="online", id=run_id, resume="allow", settings=wandb.Settings(**quiet, **timeout),
                             **init_args)
            _say("info", f"W&B run {run.url}")
            return run, "online"
        except Exception as error:  # noqa: BLE001 - no server, bad key, timeout: all mean "go offline"
            reason = f"W&B online start failed after {time.monotonic() - started:.0f} s ({first_line(error)})"
    try:
        run = wandb.init(mode="offline", id=run_id, resume="allow", settings=wandb.Settings(**quiet), **init_args)
    except Exception as error:  # noqa: BLE001
        _say("warning", f"W&B could not start ({first_line(error)}); training goes on without W&B")
        return None, "disabled"
    sync = f"upload it later with: wandb sync {run.settings.sync_dir}"
    if mode == "online":
        _say("warning", f"{reason}; logging offline instead, {sync}")
    else:
        _say("info", f"W&B run saved offline; {sync}")
    return run, "offline"


class _GuardedWandBLogger(WandBLogger):
    """Ignite's ``WandBLogger`` (on W&B's current run) whose handlers all pass through ``guard``."""

    def __init__(self, guard: Callable[[Callable[..., Any]], Callable[..., Any]]) -> None:
        super().__init__(init=False)
        self.__dict__["_guard"] = guard  # set directly: WandBLogger forwards unknown attributes to wandb

    def attach(self, engine: Engine, log_handler: Callable, event_name: Any, *args: Any, **kwargs: Any
               ) -> RemovableEventHandle:
        return super().attach(engine, self._guard(log_handler), event_name, *args, **kwargs)


class WandbTracker:
    """One W&B run and the handlers feeding it (a :class:`~ignite_mnist.tracking.Tracker`).

    A disabled tracker (``mode == "disabled"``, or a rank other than 0) logs
    nothing but still carries the run id through checkpoints.

    Args:
        mode: ``auto``, ``online``, ``offline`` or ``disabled`` (see :func:`resolve_wandb_mode`).
        init_args: ``wandb.init`` arguments (see :func:`wandb_init_args`).
        log_every: iterations between two training-loss rows.
        watch: ``gradients``, ``parameters`` or ``all`` histograms via ``wandb.watch`` (``off``: none).
        run_id: continue this W&B run.

    Attributes:
        mode: ``online``, ``offline`` or ``disabled``: what the run is (after it started).
        run: the ``wandb`` run, or None.
        handles: the attached logging handles (``handle.remove()`` detaches one).
        failed: True once a W&B error stopped logging.
        closed: True once :meth:`finish` ran.
    """

    name = "wandb"

    def __init__(self, *, mode: str = "auto", init_args: dict[str, Any] | None = None, log_every: int = 50,
                 watch: str = "off", run_id: str | None = None) -> None:
        if log_every <= 0:
            raise ValueError(f"log_every must be > 0, got {log_every}")
        if watch not in WANDB_WATCH:
            raise ValueError(f"watch must be one of {', '.join(WANDB_WATCH)}, got {watch!r}")
        self.mode = resolve_wandb_mode(mode) if idist.get_rank() == 0 else "disabled"
        self.init_args = init_args or wandb_init_args()
        self.log_every, self.watch, self.run_id = log_every, watch, run_id
        self.run: Any = None
        self.trainer: Engine | None = None
        self.model: torch.nn.Module | None = None
        self.handles: list[RemovableEventHandle] = []
        self.started = self.failed = self.closed = False

    @classmethod
    def for_run(cls, config: TrainConfig, run_dir: RunDir) -> WandbTracker:
        """The tracker ``config``'s ``--wandb-*`` settings ask for, keeping its files in ``run_dir``."""
        init_args = wandb_init_args(project=config.wandb_project, entity=config.wandb_entity, name=config.wandb_name,
                                    tags=config.wandb_tags, config=config.to_dict(), dir=run_dir.path)
        return cls(mode=config.wandb_mode, init_args=init_args, log_every=config.wandb_log_every,
                   watch=config.wandb_watch)

    @property
    def active(self) -> bool:
        """Whether anything is still being logged."""
        return self.run is not None and not self.failed and not self.closed

    @property
    def run_dir(self) -> Path | None:
        """The run's local folder (``.../wandb/<offline-run-...>``), the one ``wandb sync`` takes."""
        return Path(self.run.settings.sync_dir) if self.run is not None else None

    def start(self, engine: Engine | None = None) -> None:
        """Start the W&B run (once; the trainer's ``STARTED`` calls it if nobody did before)."""
        if self.started or self.closed:
            return
        self.started = True
        if self.mode == "disabled":
            return
        self.run, self.mode = _start_run(self.mode, self.run_id, self.init_args)
        if self.run is not None:
            self.run_id = self.run.id
            if self.watch != "off" and self.model is not None:
                self.guard(lambda: self.run.watch(self.model, log=self.watch, log_freq=self.log_every))()

    def guard(self, handler: Callable[..., Any]) -> Callable[..., Any]:
        """Wrap a handler so a W&B error is reported once and never reaches the engine."""

        def guarded(*args: Any, **kwargs: Any) -> None:
            if not self.active:
                return
            try:
                handler(*args, **kwargs)
            except Exception as error:  # noqa: BLE001 - W&B must never end a training
                self.failed = True
                _say("warning", f"W&B logging failed ({type(error).__name__}: {first_line(error)}); "
                                "training goes on without W&B logging")

        return guarded

    def _on(self, engine: Engine, event: Any, handler: Callable[..., Any]) -> None:
        self.handles.append(engine.add_event_handler(event, self.guard(handler)))

    def attach(
        self,
        trainer: Engine,
        *,
        evaluators: Mapping[str, Engine] | None = None,
        optimizer: torch.optim.Optimizer | None = None,
        model: torch.nn.Module | None = None,
        record: RunRecord | None = None,
        epoch_metrics: Sequence[str] = ("train_loss",),
    ) -> None:
        """Log ``trainer`` (and its evaluators) to the run, all at the trainer's iteration.

        ``train/loss`` (the engine output) and ``lr/group_<i>`` every ``log_every``
        iterations; ``epoch/epoch`` and ``epoch/<metric>`` for those of
        ``epoch_metrics`` the trainer has, after each epoch; ``<name>/<metric>``
        after every run of each evaluator; with a ``record``, ``best_<metric>`` in
        the summary after each validation.
        """
        self.trainer, self.model = trainer, model
        trainer.add_event_handler(Events.STARTED, self.start)
        on_exception(trainer, self._finish_on_error)
        if self.mode == "disabled":
            return
        logger = _GuardedWandBLogger(self.guard)
        at_iteration = global_step_from_engine(trainer, Events.ITERATION_COMPLETED)
        every = Events.ITERATION_COMPLETED(every=self.log_every)
        output = OutputHandler("train", output_transform=lambda loss: {"loss": loss})
        self.handles.append(logger.attach(trainer, output, every))
        if optimizer is not None:
            self.handles.append(logger.attach(trainer, OptimizerParamsHandler(optimizer), every))
        self._on(trainer, Events.EPOCH_COMPLETED, lambda engine: self._log_epoch(engine, epoch_metrics))
        for tag, evaluator in (evaluators or {}).items():
            handler = OutputHandler(tag, metric_names="all", global_step_transform=at_iteration)
            self.handles.append(logger.attach(evaluator, handler, Events.COMPLETED))
        if record is not None:
            self._on(trainer, ValidationEvents.VALIDATION_COMPLETED,
                     lambda _: self.run.summary.update({f"best_{k}": v for k, v in record.best.items()}))

    def _log_epoch(self, trainer: Engine, metric_names: Sequence[str]) -> None:
        values = {f"epoch/{k}": trainer.state.metrics[k] for k in metric_names if k in trainer.state.metrics}
        self.run.log(values | {"epoch/epoch": trainer.state.epoch}, step=trainer.state.iteration)

    def _step(self) -> int | None:
        return self.trainer.state.iteration if self.trainer is not None else None

    def log_test_report(self, evaluation: Evaluation) -> None:
        """Log ``test/<metric>``, the confusion matrix and the misclassified digits; ``test_<metric>`` in the summary."""
        self.guard(self._log_test_report)(evaluation)

    def _log_test_report(self, evaluation: Evaluation) -> None:
        import wandb

        names = list(evaluation.classes)
        table = wandb.Table(columns=["image", "label", "prediction", "confidence"])
        for wrong in evaluation.misclassified:
            caption = f"{names[wrong.label]} -> {names[wrong.prediction]}"
            pixels = wrong.image.mul(255).round().to(torch.uint8).numpy()  # (28, 28) grayscale, as W&B reads it
            table.add_data(wandb.Image(pixels, caption=caption), names[wrong.label], names[wrong.prediction],
                           round(wrong.confidence, 4))
        y_true, y_pred = _labelled_pairs(evaluation.confusion_matrix)
        matrix = wandb.plot.confusion_matrix(y_true=y_true, preds=y_pred, class_names=names)
        scalars = {"accuracy": evaluation.accuracy, "loss": evaluation.loss}
        self.run.log({f"test/{k}": v for k, v in scalars.items()}
                     | {"test/confusion_matrix": matrix, "test/misclassified": table}, step=self._step())
        self.run.summary.update({f"test_{k}": v for k, v in scalars.items()})

    def log_model(self, path: str | Path | None, aliases: Sequence[str] = ("best", "latest")) -> None:
        """Record the checkpoint at ``path`` as the run's model artifact ``model-<run id>``."""
        if path is not None:
            self.guard(lambda: self.run.log_model(path=str(path), name=f"model-{self.run.id}", aliases=list(aliases)))()

    def finish(self, status: RunStatus = "finished", exit_code: int = 0) -> None:
        """Close the run with ``status`` in its summary (flushes everything); later calls do nothing."""
        if self.run is None or self.closed:
            self.closed = True
            return
        try:
            if not self.failed:
                self.run.summary["status"] = status
            self.closed = True
            self.run.finish(exit_code=exit_code)
        except Exception as error:  # noqa: BLE001 - W&B must never end a training
            if not self.failed:
                _say("warning", f"W&B could not close the run ({type(error).__name__}: {first_line(error)})")

    def _finish_on_error(self, engine: Engine, error: BaseException) -> None:
        interrupted = isinstance(error, (Interrupted, KeyboardInterrupt))
        self.finish("interrupted" if interrupted else "failed", getattr(error, "exit_code", 130 if interrupted else 1))

    def state_dict(self) -> dict[str, Any]:
        return {"run_id": self.run_id}

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
