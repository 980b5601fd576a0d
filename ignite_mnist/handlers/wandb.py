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
  offline run after :data:`ONLINE_INIT_TIMEOUT` seconds (W&B waits 90 s), with
  one warning;
* a guard around every handler: the first W&B error is reported once, W&B
  logging stops, training goes on;
* the test-set report (confusion matrix, misclassified digits, summary values)
  collected while the test evaluator runs, so no second pass over the data;
* the run id as checkpointable state, so a resumed training continues the same
  W&B run; only rank 0 logs.

``wandb`` is imported only when a tracker starts a run: importing this module or
attaching with ``mode="disabled"`` costs nothing.

Example:
    >>> tracker = attach_wandb(trainer, optimizer=optimizer, evaluators={"val": evaluator},
    ...                        config={"lr": 1e-3}, dir="runs/demo")  # doctest: +SKIP
    >>> tracker.attach_test_report(tester)  # doctest: +SKIP
    >>> trainer.run(train_loader, max_epochs=2); tester.run(test_loader)  # doctest: +SKIP
    >>> tracker.log_model("runs/demo/checkpoints/best.pt")  # doctest: +SKIP
    >>> tracker.finish()  # doctest: +SKIP
"""

from __future__ import annotations

import netrc
import os
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import ignite.distributed as idist
import torch
from ignite.engine import Engine, Events
from ignite.engine.events import RemovableEventHandle
from ignite.handlers import global_step_from_engine
from ignite.handlers.wandb_logger import OptimizerParamsHandler, OutputHandler, WandBLogger

__all__ = [
    "DEFAULT_PROJECT",
    "MODES",
    "ONLINE_INIT_TIMEOUT",
    "WATCH_CHOICES",
    "WandbTracker",
    "attach_wandb",
    "has_wandb_credentials",
    "resolve_wandb_mode",
]

MODES = ("auto", "online", "offline", "disabled")
WATCH_CHOICES = ("off", "gradients", "parameters", "all")
DEFAULT_PROJECT = "ignite-mnist"
#: Seconds an online start may take before falling back to offline (W&B's own default is 90).
ONLINE_INIT_TIMEOUT = 10.0
#: Misclassified test digits shown in the ``test/misclassified`` table.
MAX_MISCLASSIFIED = 32
_ENV_MODES = {"online": "online", "run": "online", "offline": "offline", "dryrun": "offline", "disabled": "disabled"}


def _say(kind: str, message: str) -> None:
    print(f"ignite-mnist: {kind}: {message}", file=sys.stderr, flush=True)


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
    if mode not in MODES:
        raise ValueError(f"W&B mode must be one of {', '.join(MODES)}, got {mode!r}")
    if mode != "auto":
        return mode
    if os.environ.get("WANDB_DISABLED", "").lower() in ("1", "true"):
        return "disabled"
    from_env = _ENV_MODES.get(os.environ.get("WANDB_MODE", "").strip().lower())
    if from_env:
        return from_env
    return "online" if has_wandb_credentials() else "offline"


class _GuardedWandBLogger(WandBLogger):
    """Ignite's ``WandBLogger`` (already initialised run) whose handlers all pass through ``guard``."""

    def __init__(self, guard: Callable[[Callable[..., Any]], Callable[..., Any]]) -> None:
        super().__init__(init=False)
        self.__dict__["_guard"] = guard  # set directly: WandBLogger forwards unknown attributes to wandb

    def attach(self, engine: Engine, log_handler: Callable, event_name: Any, *args: Any, **kwargs: Any
               ) -> RemovableEventHandle:
        return super().attach(engine, self._guard(log_handler), event_name, *args, **kwargs)


class WandbTracker:
    """One W&B run and the handlers feeding it; what :func:`attach_wandb` returns.

    A disabled tracker (``mode == "disabled"``, or a rank other than 0) logs
    nothing but still carries the run id through checkpoints. Put the tracker
    into the checkpoint's ``to_save`` (``state_dict()`` is ``{"run_id": ...,
    "best": {...}}``) and pass that ``run_id`` back on resume.

    Attributes:
        mode: ``online``, ``offline`` or ``disabled``: what the run really is.
        run: the ``wandb`` run, or None.
        run_id: the W&B run id (kept from a checkpoint even when disabled).
        handles: the attached event handles (``handle.remove()`` detaches one).
        failed: True once a W&B error stopped logging.
        closed: True once :meth:`finish` ran.
    """

    def __init__(self, trainer: Engine, run: Any = None, mode: str = "disabled", run_id: str | None = None) -> None:
        self.trainer = trainer
        self.run = run
        self.mode = mode
        self.run_id = run.id if run is not None else run_id
        self.handles: list[RemovableEventHandle] = []
        self.failed = False
        self.closed = False
        self.logger: WandBLogger | None = None
        self.best: dict[str, float] = {}

    @property
    def active(self) -> bool:
        """Whether anything is still being logged."""
        return self.run is not None and not self.failed and not self.closed

    @property
    def run_dir(self) -> Path | None:
        """The run's local folder (``.../wandb/<offline-run-...>``), the one ``wandb sync`` takes."""
        return Path(self.run.settings.sync_dir) if self.run is not None else None

    def state_dict(self) -> dict[str, Any]:
        return {"run_id": self.run_id, "best": dict(self.best)}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore the best values; the id is taken only when no run is live (a live run keeps its own)."""
        if self.run is None:
            self.run_id = state.get("run_id")
        self.best.update(state.get("best") or {})

    def guard(self, handler: Callable[..., Any]) -> Callable[..., Any]:
        """Wrap a handler so a W&B error is reported once and never reaches the engine."""

        def guarded(*args: Any, **kwargs: Any) -> None:
            if not self.active:
                return
            try:
                handler(*args, **kwargs)
            except Exception as error:  # noqa: BLE001 - W&B must never end a training
                self.failed = True
                _say("warning", f"W&B logging failed ({type(error).__name__}: {_first_line(error)}); "
                                "training goes on without W&B logging")

        return guarded

    def _on(self, engine: Engine, event: Any, handler: Callable[..., Any]) -> None:
        self.handles.append(engine.add_event_handler(event, self.guard(handler)))

    def attach_test_report(self, tester: Engine, class_names: Sequence[str] | None = None) -> None:
        """When ``tester`` completes, log ``test/<metric>``, a confusion matrix and the misclassified digits.

        The summary gets ``test_<metric>`` (e.g. ``test_accuracy``). Predictions are
        collected while ``tester`` runs, so the test data is read once.
        ``tester.state.output`` must be ``(logits, labels)`` (Ignite's supervised
        evaluator) and ``tester.state.batch[0]`` the images.

        Example:
            >>> tracker.attach_test_report(tester, class_names=[str(d) for d in range(10)])  # doctest: +SKIP
            >>> tester.run(test_loader)  # doctest: +SKIP
        """
        if self.run is None:
            return
        import wandb

        labels: list[torch.Tensor] = []
        preds: list[torch.Tensor] = []
        wrong: list[tuple[torch.Tensor, int, int, float]] = []

        def reset(_: Engine) -> None:
            for collected in (labels, preds, wrong):
                collected.clear()

        def collect(engine: Engine) -> None:
            logits, y = engine.state.output
            confidence, y_pred = torch.softmax(logits.detach().float(), dim=1).max(dim=1)
            labels.append(y.cpu())
            preds.append(y_pred.cpu())
            images = engine.state.batch[0]
            for i in (y_pred != y).nonzero().flatten()[: MAX_MISCLASSIFIED - len(wrong)].tolist():
                wrong.append((images[i].cpu(), int(y[i]), int(y_pred[i]), float(confidence[i])))

        def report(engine: Engine) -> None:
            num_classes = engine.state.output[0].shape[1]
            names = list(class_names) if class_names else [str(c) for c in range(num_classes)]
            table = wandb.Table(columns=["image", "label", "prediction", "confidence"])
            for image, label, pred, confidence in wrong:
                caption = f"{names[label]} -> {names[pred]}"
                table.add_data(wandb.Image(image, caption=caption), names[label], names[pred], round(confidence, 4))
            scalars = {k: float(v) for k, v in engine.state.metrics.items() if isinstance(v, (int, float))}
            y_true, y_pred = _labelled_pairs(engine.state.metrics.get("confusion_matrix"), labels, preds)
            matrix = wandb.plot.confusion_matrix(y_true=y_true, preds=y_pred, class_names=names)
            self.run.log({f"test/{k}": v for k, v in scalars.items()}
                         | {"test/confusion_matrix": matrix, "test/misclassified": table},
                         step=self.trainer.state.iteration)
            self.run.summary.update({f"test_{k}": v for k, v in scalars.items()})

        self._on(tester, Events.STARTED, reset)
        self._on(tester, Events.ITERATION_COMPLETED, collect)
        self._on(tester, Events.COMPLETED, report)

    def _track_best_accuracy(self, tag: str) -> Callable[[Engine], None]:
        key = f"best_{tag}_accuracy"

        def update(evaluator: Engine) -> None:
            accuracy = evaluator.state.metrics.get("accuracy")
            if accuracy is not None:
                self.best[key] = max(float(accuracy), self.best.get(key, float("-inf")))
                self.run.summary[key] = self.best[key]

        return update

    def log_model(self, path: str | Path | None, aliases: Sequence[str] = ("best", "latest")) -> None:
        """Record the checkpoint at ``path`` as the run's model artifact ``model-<run id>``."""
        if path is None:
            return
        self.guard(lambda: self.run.log_model(path=str(path), name=f"model-{self.run.id}", aliases=list(aliases)))()

    def finish(self, exit_code: int = 0) -> None:
        """Close the run (flushes everything to disk or the server); later calls do nothing."""
        if self.run is None or self.closed:
            return
        self.closed = True
        try:
            self.run.finish(exit_code=exit_code)
        except Exception as error:  # noqa: BLE001 - W&B must never end a training
            if not self.failed:
                _say("warning", f"W&B could not close the run ({type(error).__name__}: {_first_line(error)})")


def _labelled_pairs(
    confusion: torch.Tensor | None, labels: list[torch.Tensor], preds: list[torch.Tensor]
) -> tuple[list[int], list[int]]:
    """(true, predicted) class lists for ``wandb.plot.confusion_matrix``.

    With the evaluator's ``confusion_matrix`` metric (Ignite's ``ConfusionMatrix``,
    summed over all ranks) the pairs are rebuilt from its counts, so a distributed
    run reports the whole test set; otherwise they are this process's predictions.

    Example:
        >>> _labelled_pairs(torch.tensor([[2, 0], [1, 0]]), [], [])
        ([0, 0, 1], [0, 0, 0])
    """
    if confusion is None:
        return torch.cat(labels).tolist(), torch.cat(preds).tolist()
    counts = confusion.detach().cpu().long()
    classes = torch.arange(counts.shape[0])
    true = classes.repeat_interleave(counts.sum(dim=1))
    predicted = torch.cat([classes.repeat_interleave(row) for row in counts])
    return true.tolist(), predicted.tolist()


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0][:200] if text else "no message"


def _start_run(trainer: Engine, mode: str, run_id: str | None, init_args: dict[str, Any]) -> WandbTracker:
    """Start the run; online falls back to offline within a bounded time; any failure disables W&B."""
    import wandb

    # W&B's banner is replaced by our one line, unless $WANDB_SILENT/$WANDB_QUIET say otherwise.
    quiet = {} if {"WANDB_SILENT", "WANDB_QUIET"} & set(os.environ) else {"silent": True}
    if mode == "online":
        timeout = {} if os.environ.get("WANDB_INIT_TIMEOUT") else {"init_timeout": ONLINE_INIT_TIMEOUT}
        started = time.monotonic()
        try:
            run = wandb.init(mode="online", id=run_id, resume="allow", settings=wandb.Settings(**quiet, **timeout),
                             **init_args)
            _say("info", f"W&B run {run.url}")
            return WandbTracker(trainer, run, "online")
        except Exception as error:  # noqa: BLE001 - no server, bad key, timeout: all mean "go offline"
            reason = f"W&B online start failed after {time.monotonic() - started:.0f} s ({_first_line(error)})"
    try:
        run = wandb.init(mode="offline", id=run_id, resume="allow", settings=wandb.Settings(**quiet), **init_args)
    except Exception as error:  # noqa: BLE001
        _say("warning", f"W&B could not start ({_first_line(error)}); training goes on without W&B")
        return WandbTracker(trainer, None, "disabled", run_id)
    tracker = WandbTracker(trainer, run, "offline")
    sync = f"upload it later with: wandb sync {tracker.run_dir}"
    if mode == "online":
        _say("warning", f"{reason}; logging offline instead, {sync}")
    else:
        _say("info", f"W&B run saved offline; {sync}")
    return tracker


def attach_wandb(
    trainer: Engine,
    *,
    optimizer: torch.optim.Optimizer | None = None,
    evaluators: Mapping[str, Engine] | None = None,
    model: torch.nn.Module | None = None,
    config: Mapping[str, Any] | None = None,
    mode: str = "auto",
    project: str | None = None,
    entity: str | None = None,
    name: str | None = None,
    tags: str | Sequence[str] | None = None,
    dir: str | Path | None = None,
    log_every: int = 50,
    watch: str = "off",
    run_id: str | None = None,
    epoch_metrics: Sequence[str] = ("train_loss",),
) -> WandbTracker:
    """Track ``trainer`` (and its evaluators) in a W&B run; works on any Ignite ``Engine``.

    Logged, all at the trainer's iteration: ``train/loss`` (the engine output)
    and ``lr/group_<i>`` every ``log_every`` iterations; ``epoch/epoch`` and
    ``epoch/<metric>`` for the trainer's ``epoch_metrics`` after each epoch;
    ``<name>/<metric>`` after every run of each evaluator, with the summary value
    ``best_<name>_accuracy``. For the test set see
    :meth:`WandbTracker.attach_test_report`.

    Args:
        trainer: the training engine; its output is the batch loss.
        optimizer: logs its learning rate(s) when given.
        evaluators: e.g. ``{"val": evaluator}``; each logs under its name.
        model: what ``watch`` observes.
        config: the run's settings (``config.json``), stored as the W&B config.
        mode: ``auto``, ``online``, ``offline`` or ``disabled`` (see :func:`resolve_wandb_mode`).
        project, entity, name, tags: W&B's own; None leaves them to ``$WANDB_PROJECT``
            (else ``ignite-mnist``), ``$WANDB_ENTITY``, ``$WANDB_NAME`` (else the name of
            ``dir``) and ``$WANDB_TAGS``. ``tags`` may be comma-separated.
        dir: the run directory; W&B files go to ``<dir>/wandb/`` unless ``$WANDB_DIR`` is set.
        log_every: iterations between two training-loss rows.
        watch: ``gradients``, ``parameters`` or ``all`` histograms via ``wandb.watch`` (needs ``model``).
        run_id: continue this W&B run (from a checkpoint's ``["wandb"]["run_id"]``).
        epoch_metrics: trainer metrics logged after each epoch (ours: ``train_loss``, the epoch's mean loss).

    Returns:
        The :class:`WandbTracker`; call ``finish()`` on it at the end.

    Example:
        >>> trainer = Engine(lambda engine, batch: 0.5)
        >>> tracker = attach_wandb(trainer, mode="disabled")
        >>> tracker.mode, tracker.handles, tracker.state_dict()
        ('disabled', [], {'run_id': None, 'best': {}})
    """
    if log_every <= 0:
        raise ValueError(f"log_every must be > 0, got {log_every}")
    if watch not in WATCH_CHOICES:
        raise ValueError(f"watch must be one of {', '.join(WATCH_CHOICES)}, got {watch!r}")
    mode = resolve_wandb_mode(mode)
    if mode == "disabled" or idist.get_rank() != 0:
        return WandbTracker(trainer, None, "disabled", run_id)

    if isinstance(tags, str):
        tags = [t.strip() for t in tags.split(",") if t.strip()]
    init_args = {
        "project": project or os.environ.get("WANDB_PROJECT") or DEFAULT_PROJECT,
        "entity": entity,
        "name": name or os.environ.get("WANDB_NAME") or (Path(dir).name if dir is not None else None),
        "tags": list(tags) if tags else None,
        "config": dict(config) if config is not None else None,
        # passed even when it comes from $WANDB_DIR: W&B reads its environment once per process
        "dir": os.environ.get("WANDB_DIR") or (str(dir) if dir is not None else None),
        "job_type": "train",
    }
    if init_args["dir"] is not None:
        Path(init_args["dir"]).mkdir(parents=True, exist_ok=True)
    tracker = _start_run(trainer, mode, run_id, init_args)
    if tracker.run is None:
        return tracker
    logger = _GuardedWandBLogger(tracker.guard)
    tracker.logger = logger
    at_iteration = global_step_from_engine(trainer, Events.ITERATION_COMPLETED)
    every = Events.ITERATION_COMPLETED(every=log_every)

    handles = tracker.handles
    handles.append(logger.attach(trainer, OutputHandler("train", output_transform=lambda loss: {"loss": loss}), every))
    if optimizer is not None:
        handles.append(logger.attach(trainer, OptimizerParamsHandler(optimizer), every))
    handles.append(logger.attach(
        trainer, OutputHandler("epoch", metric_names=list(epoch_metrics), state_attributes=["epoch"],
                               global_step_transform=at_iteration), Events.EPOCH_COMPLETED,
    ))
    for tag, evaluator in (evaluators or {}).items():
        handles.append(logger.attach(
            evaluator, OutputHandler(tag, metric_names="all", global_step_transform=at_iteration), Events.COMPLETED
        ))
        tracker._on(evaluator, Events.COMPLETED, tracker._track_best_accuracy(tag))
    if watch != "off" and model is not None:
        tracker.guard(lambda: tracker.run.watch(model, log=watch, log_freq=log_every))()
    return tracker
