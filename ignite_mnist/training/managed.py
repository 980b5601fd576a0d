"""``run(config)``: one training run, as five phases a reader can follow one at a time.

1. build the parts (:func:`ignite_mnist.training.parts.build_parts`): run directory, data,
   model, optimizer, engines;
2. attach the handlers (:func:`ignite_mnist.training.wiring.attach_run_handlers`): the same
   ``attach_*`` functions a custom trainer uses;
3. restore (:func:`restore`): everything a checkpoint saved, when resuming;
4. train (:func:`train`);
5. test and report (:func:`ignite_mnist.training.report.test_and_report`).

However the run ends early, the error says what is intact and how to go on
(:class:`RunStage`): a signal outside the training loop, a file that cannot be
written, a loss that stopped being finite. Reading order for any flag:
``config.py`` declares it, a phase passes it on, the handler named there uses it.

Example:
    >>> summary = run(TrainConfig(epochs=2, data_dir=data_dir, val_size=200, output_dir=runs, run_name="two",
    ...                           progress="none", tracker=["none"], plots=False))
    >>> summary.epochs_completed, sorted(p.name for p in Path(summary.run_dir).iterdir())
    (2, ['.lock', 'checkpoints', 'config.json', 'metrics.jsonl', 'summary.json'])
"""

from __future__ import annotations

import contextlib
import copy
import functools
import math
import shlex
import signal
import threading
from collections.abc import Iterator
from pathlib import Path
from types import FrameType

import torch

from ignite_mnist import handlers as kit
from ignite_mnist.console import say
from ignite_mnist.errors import Interrupted, TrainingError, WriteError
from ignite_mnist.handlers import Resumed
from ignite_mnist.handlers.checkpoint import finite_weights
from ignite_mnist.handlers.signals import HANDLED_SIGNALS
from ignite_mnist.runtime.distributed import is_rank_zero, launch, needs_launch
from ignite_mnist.settings.config import TrainConfig
from ignite_mnist.storage.checkpoints import load_checkpoint, saved_iteration
from ignite_mnist.training.parts import RunParts, build_parts, write_config
from ignite_mnist.training.report import Summary, test_and_report
from ignite_mnist.training.resume import ResumePlan, apply_changed_settings, plan_resume, set_aside_later_work
from ignite_mnist.training.wiring import AttachHook, RunHandlers, attach_run_handlers

__all__ = ["RunStage", "Summary", "restore", "run", "train"]


class RunStage:
    """Where a run is, to tell the user what is intact and how to go on when it stops early."""

    def __init__(self) -> None:
        self.parts: RunParts | None = None
        self.trained = False

    @property
    def activity(self) -> str:
        return "starting" if self.parts is None else "testing and reporting" if self.trained else "training"

    def resume_command(self) -> str:
        assert self.parts is not None
        run_dir = self.parts.run_dir.path
        return shlex.join(["ignite-mnist", "--resume", "auto", "--output-dir", str(run_dir.parent),
                           "--run-name", run_dir.name])

    def advice(self) -> str:
        """What is intact and the command that goes on from it."""
        if self.parts is None:
            return "nothing was trained or written"
        if self.trained:
            return ("training had finished and its checkpoints are intact; "
                    f"write the report with: {self.resume_command()}")
        latest = self.parts.run_dir.latest_checkpoint()
        if latest is None:
            return "no checkpoint had been saved yet; start the run again"
        return f"the newest intact checkpoint is {latest}; continue with: {self.resume_command()}"


@contextlib.contextmanager
def _signals_stop(stage: RunStage) -> Iterator[None]:
    """Outside the training loop (which saves first), SIGINT/SIGTERM stop the run at once, saying what is intact."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum: int, frame: FrameType | None) -> None:
        name = signal.Signals(signum).name
        raise Interrupted(f"interrupted by {name} while {stage.activity}; {stage.advice()}", signum)

    previous = {signum: signal.signal(signum, stop) for signum in HANDLED_SIGNALS}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def run(config: TrainConfig, *, resume: ResumePlan | None = None, attach: AttachHook | None = None) -> Summary:
    """Train, validate and test as ``config`` says; write the run directory; return the summary.

    Args:
        config: the settings.
        resume: a checkpoint already read (:func:`ignite_mnist.training.resume.config_for_resume`);
            by default ``config.resume`` is located and read here.
        attach: your own handlers: called with the run's
            :class:`~ignite_mnist.training.parts.RunParts` (trainer, evaluator, model, optimizer,
            loaders, run directory) after the built-in handlers and before
            checkpointing; it may return ``{name: object}`` to checkpoint too. With
            several processes it must be a module-level function (it is pickled).

    Raises:
        IgniteMnistError: a user-fixable problem (bad setting, data, checkpoint, run dir);
            :class:`~ignite_mnist.errors.Interrupted` after a signal (a checkpoint was saved);
            :class:`~ignite_mnist.errors.TrainingError` when the loss stops being finite;
            :class:`~ignite_mnist.errors.WriteError` when a file cannot be written.
    """
    config.validate()
    if needs_launch(config):  # --nproc-per-node N or torchrun: run this function on every rank
        return launch(functools.partial(run, attach=attach), config)
    stage = RunStage()
    with contextlib.ExitStack() as held, _signals_stop(stage):  # the lock and CPU settings last the whole run
        plan = resume if resume is not None else plan_resume(config)
        stage.parts = parts = build_parts(config, plan, held)
        handlers = attach_run_handlers(parts, attach)
        try:
            return _phases_3_to_5(parts, handlers, plan, stage)
        except BaseException as error:
            for tracker in handlers.trackers:
                tracker.finish("interrupted" if isinstance(error, (Interrupted, KeyboardInterrupt)) else "failed",
                               getattr(error, "exit_code", 1))
            if isinstance(error, WriteError):
                raise error.with_advice(stage.advice()) from None
            raise


def _phases_3_to_5(parts: RunParts, handlers: RunHandlers, plan: ResumePlan | None, stage: RunStage) -> Summary:
    resumed = restore(parts, plan)
    if resumed is not None and resumed.finished:
        stage.trained = True
        previous = parts.run_dir.read_summary()
        if previous is not None:  # nothing to train or test again, and nothing rewritten
            _say_finished(parts, "nothing to train; its summary stands")
            return Summary.from_dict(previous)
        _say_finished(parts, "testing its best checkpoint")
    else:
        train(parts, handlers, stage)
        stage.trained = True
    return test_and_report(parts, handlers, plan)


def restore(parts: RunParts, plan: ResumePlan | None) -> Resumed | None:
    """Phase 3: restore every saved object through the public :func:`~ignite_mnist.handlers.resume_training`;
    then the run directory follows the checkpoint.

    Only once everything is restored (a refused checkpoint changes nothing on disk),
    and only when the run trains on (a finished run is not rewritten): a run resumed
    in place from an older checkpoint moves what it had written after it aside
    (:func:`~ignite_mnist.training.resume.set_aside_later_work`), and ``config.json`` holds the
    settings it goes on with; the metrics log forgets the rows after the checkpoint when training starts.
    """
    if plan is None:
        return None
    config, saved = parts.config, plan.saved_config
    resumed = kit.resume_training(
        plan, parts.trainer, max_epochs=config.epochs, data=None if config.allow_config_change else parts.train_loader,
        skip=() if saved.get("optimizer") == config.optimizer else ("optimizer",),  # another kind starts afresh
    )
    assert resumed is not None  # a checkpoint was given: there is something to resume
    apply_changed_settings(parts.optimizer, saved, config)
    if resumed.in_place and is_rank_zero() and not resumed.finished:
        set_aside_later_work(parts.run_dir, plan, trains_on=True)
        write_config(parts.run_dir, config)
    return resumed


def _say_finished(parts: RunParts, what: str) -> None:
    if is_rank_zero():
        say(f"{parts.run_dir} already finished at epoch {parts.trainer.state.epoch}; {what}")


def _trainable(parts: RunParts, handlers: RunHandlers, path: Path) -> bool:
    """Whether a checkpoint's weights and optimizer state are finite and its loss on a validation batch is sane.

    Sane: below ten times the larger of ``ln(classes)`` (a guess's loss) and the best
    validation loss so far; weights that are finite but blown up (1e20) fail.
    """
    state = load_checkpoint(path, inside=parts.run_dir.path)
    if not finite_weights({"model": state["model"], "optimizer": state.get("optimizer", {})}):
        return False
    model = copy.deepcopy(parts.model)
    model.load_state_dict(state["model"])
    images, labels = next(iter(parts.val_loader))
    with torch.no_grad():
        loss = float(torch.nn.functional.cross_entropy(model.eval()(images.to(parts.device)), labels.to(parts.device)))
    bound = 10 * max(math.log(len(parts.spec.classes)), handlers.record.best.get("val_loss", 0.0))
    return math.isfinite(loss) and loss <= bound


def last_good_checkpoint(parts: RunParts, handlers: RunHandlers, diverged_at: int) -> Path | None:
    """The newest checkpoint to go on from after the loss became non-finite at ``diverged_at``.

    The loss at iteration ``i`` is computed with the weights saved at ``i - 1``, so
    only checkpoints ("last" or "best") from before that are candidates, newest
    first, and the first one that is :func:`_trainable` is taken.
    """
    folder = parts.run_dir.checkpoint_dir
    found = [(saved_iteration(p), p) for p in folder.iterdir()] if folder.is_dir() else []
    candidates = sorted(((i, p) for i, p in found if i is not None and i < diverged_at - 1), reverse=True)
    return next((path for _, path in candidates if _trainable(parts, handlers, path)), None)


def train(parts: RunParts, handlers: RunHandlers, stage: RunStage | None = None) -> None:
    """Phase 4: run the trainer to the end.

    Raises:
        Interrupted: a signal stopped it (a checkpoint was saved); the message says how to resume.
        TrainingError: the loss stopped being finite; the message names a checkpoint to go on from.
    """
    stage = stage or RunStage()
    stage.parts = parts
    for tracker in handlers.trackers:
        tracker.start()
    try:
        parts.trainer.run(parts.train_loader, max_epochs=parts.config.epochs)
    except Interrupted as error:
        raise Interrupted(f"{error}; resume with: {stage.resume_command()}", error.signal_number) from None
    stop = handlers.nan_stop
    if stop.tripped:
        good = last_good_checkpoint(parts, handlers, stop.iteration)  # type: ignore[arg-type]
        advice = ("No usable checkpoint was saved before; start again with a lower --lr" if good is None else
                  f"The last good checkpoint is {good}; continue from it with a lower --lr: "
                  f"--resume {shlex.quote(str(good))} --lr LR --allow-config-change")
        raise TrainingError(f"loss became {stop.value} at iteration {stop.iteration} "
                            f"(epoch {parts.trainer.state.epoch}); stopped. {advice}")
