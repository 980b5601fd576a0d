"""``run(config)``: one training run, as five phases a reader can follow one at a time.

1. build the parts (:func:`ignite_mnist.parts.build_parts`): run directory, data,
   model, optimizer, engines;
2. attach the handlers (:func:`ignite_mnist.wiring.attach_run_handlers`): the same
   ``attach_*`` functions a custom trainer uses;
3. restore (:func:`restore`): everything a checkpoint saved, when resuming;
4. train (:func:`train`);
5. test and report (:func:`ignite_mnist.report.test_and_report`).

Reading order for any flag: ``config.py`` declares it, a phase passes it on,
the handler named there uses it.

Example:
    >>> summary = run(TrainConfig(epochs=2, data_dir=data_dir, val_size=200, output_dir=runs, run_name="two",
    ...                           progress="none", wandb_mode="disabled", plots=False))
    >>> summary.epochs_completed, sorted(p.name for p in Path(summary.run_dir).iterdir())
    (2, ['.lock', 'checkpoints', 'config.json', 'metrics.jsonl', 'summary.json'])
"""

from __future__ import annotations

import contextlib
import functools
import shlex
from pathlib import Path

from ignite_mnist.config import TrainConfig
from ignite_mnist.distributed import launch, needs_launch
from ignite_mnist.errors import Interrupted, TrainingError
from ignite_mnist.handlers import stopped_early
from ignite_mnist.parts import RunParts, build_parts
from ignite_mnist.report import Summary, test_and_report
from ignite_mnist.resume import ResumePlan, plan_resume, restore_run
from ignite_mnist.wiring import AttachHook, RunHandlers, attach_run_handlers

__all__ = ["Summary", "restore", "run", "train"]


def run(config: TrainConfig, *, resume: ResumePlan | None = None, attach: AttachHook | None = None) -> Summary:
    """Train, validate and test as ``config`` says; write the run directory; return the summary.

    Args:
        config: the settings.
        resume: a checkpoint already read (:func:`ignite_mnist.resume.config_for_resume`);
            by default ``config.resume`` is located and read here.
        attach: your own handlers: called with the run's
            :class:`~ignite_mnist.parts.RunParts` (trainer, evaluator, model, optimizer,
            loaders, run directory) after the built-in handlers and before
            checkpointing; it may return ``{name: object}`` to checkpoint too. With
            several processes it must be a module-level function (it is pickled).

    Raises:
        IgniteMnistError: a user-fixable problem (bad setting, data, checkpoint, run dir);
            :class:`~ignite_mnist.errors.Interrupted` after a signal saved a checkpoint;
            :class:`~ignite_mnist.errors.TrainingError` when the loss stops being finite.
    """
    config.validate()
    if needs_launch(config):  # --nproc-per-node N or torchrun: run this function on every rank
        return launch(functools.partial(run, attach=attach), config)
    with contextlib.ExitStack() as held:  # the run directory's lock and CPU settings, until the run ends
        plan = resume if resume is not None else plan_resume(config)
        parts = build_parts(config, plan, held)
        handlers = attach_run_handlers(parts, attach)
        try:
            restore(parts, handlers, plan)
            if _finished(parts, handlers):
                previous = parts.run_dir.read_summary()
                if previous is not None:  # nothing to train or test again, and nothing rewritten
                    _say_finished(parts, "nothing to train; its summary stands")
                    return Summary.from_dict(previous)
                _say_finished(parts, "testing its best checkpoint")
            else:
                train(parts, handlers)
            return test_and_report(parts, handlers, plan)
        except BaseException as error:
            for tracker in handlers.trackers:
                tracker.finish("interrupted" if isinstance(error, (Interrupted, KeyboardInterrupt)) else "failed",
                               getattr(error, "exit_code", 1))
            raise


def restore(parts: RunParts, handlers: RunHandlers, plan: ResumePlan | None) -> None:
    """Phase 3: restore every saved object (the metrics log forgets the rows after the checkpoint)."""
    if plan is not None:
        restore_run(handlers.to_save, plan, parts.config, handlers.checkpoints.resumable())


def _finished(parts: RunParts, handlers: RunHandlers) -> bool:
    state = parts.trainer.state
    return state.iteration >= len(parts.train_loader) * parts.config.epochs or stopped_early(handlers.stopper)


def _say_finished(parts: RunParts, what: str) -> None:
    if parts.rank == 0:
        print(f"{parts.run_dir} already finished at epoch {parts.trainer.state.epoch}; {what}")


def _resume_command(parts: RunParts) -> str:
    run_dir = parts.run_dir.path
    return shlex.join(["ignite-mnist", "--resume", "auto", "--output-dir", str(run_dir.parent),
                       "--run-name", run_dir.name])


def train(parts: RunParts, handlers: RunHandlers) -> None:
    """Phase 4: run the trainer to the end.

    Raises:
        Interrupted: a signal stopped it (a checkpoint was saved); the message says how to resume.
        TrainingError: the loss stopped being finite; the message names the last good checkpoint.
    """
    for tracker in handlers.trackers:
        tracker.start()
    try:
        parts.trainer.run(parts.train_loader, max_epochs=parts.config.epochs)
    except Interrupted as error:
        raise Interrupted(f"{error}; resume with: {_resume_command(parts)}", error.signal_number) from None
    stop = handlers.nan_stop
    if stop.tripped:
        latest = parts.run_dir.latest_checkpoint()
        advice = ("No checkpoint was saved before; start again with a lower --lr" if latest is None else
                  f"The last good checkpoint is {latest}; continue from it with a lower --lr: "
                  f"--resume {shlex.quote(str(latest))} --lr LR --allow-config-change")
        raise TrainingError(f"loss became {stop.value} at iteration {stop.iteration} "
                            f"(epoch {parts.trainer.state.epoch}); stopped. {advice}")
