"""TensorBoard tracking: Ignite's ``TensorboardLogger`` behind the tracker protocol.

Ignite supplies the logger and its handlers (the scalars of
:func:`~ignite_mnist.tracking.base.attach_scalars`); torch's ``SummaryWriter``
writes the event files, its ``add_hparams`` the configuration (in TensorBoard's
HPARAMS tab, beside the test accuracy and loss) and ``add_figure`` the confusion
matrix (with matplotlib). Added here: the writer opens when the trainer starts,
so a resumed run writes on in the same log dir with ``purge_step`` set to the
iteration after its checkpoint: TensorBoard then hides what the interrupted run
logged after that checkpoint, and the curves continue without a doubled stretch.
Nothing needs a checkpoint entry: the log dir is the run directory's.

The event files are in the run directory itself, so ``tensorboard --logdir runs``
shows every run side by side under its own name (``tensorboard --logdir <run dir>``: one run).

Example:
    >>> from ignite.engine import Engine
    >>> trainer = Engine(lambda engine, batch: 0.5)
    >>> tracker = TensorboardTracker(f"{runs}/tb-demo", log_every=2)
    >>> tracker.attach(trainer)
    >>> _ = trainer.run(range(4), max_epochs=1)
    >>> tracker.finish()
    >>> from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    >>> [(e.step, e.value) for e in EventAccumulator(f"{runs}/tb-demo").Reload().Scalars("train/loss")]
    [(2, 0.5), (4, 0.5)]
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ignite.handlers.tensorboard_logger import TensorboardLogger

from ignite_mnist.console import note
from ignite_mnist.tracking.base import GuardedLogger, LoggerTracker
from ignite_mnist.tracking.tensorboard_settings import TensorboardSettings

if TYPE_CHECKING:
    from ignite_mnist.evaluation import Evaluation
    from ignite_mnist.tracking import RunStatus

__all__ = ["TensorboardTracker", "hparams"]


def hparams(config: Mapping[str, Any]) -> dict[str, int | float | str | bool]:
    """Settings as TensorBoard hyperparameters: numbers, text and booleans; None and lists as text.

    Example:
        >>> hparams({"lr": 0.001, "patience": None, "tracker": ["tensorboard", "mlflow"]})
        {'lr': 0.001, 'patience': 'None', 'tracker': 'tensorboard,mlflow'}
    """
    def value(v: Any) -> int | float | str | bool:
        if isinstance(v, (list, tuple)):
            return ",".join(map(str, v))
        return v if isinstance(v, (int, float, str, bool)) else str(v)

    return {name: value(v) for name, v in config.items()}


class _TensorboardLogger(GuardedLogger, TensorboardLogger):
    """Ignite's ``TensorboardLogger`` whose ``SummaryWriter`` is made by :meth:`open`, not at construction."""

    def __init__(self, guard: Any) -> None:
        self.__dict__.update(guard=guard, writer=None)  # set directly: the logger forwards attributes to its writer

    def open(self, log_dir: Path, purge_step: int | None) -> None:
        TensorboardLogger.__init__(self, log_dir=str(log_dir), purge_step=purge_step)


class TensorboardTracker(LoggerTracker):
    """TensorBoard event files in ``log_dir`` (a :class:`~ignite_mnist.tracking.Tracker`).

    Args:
        log_dir: the log dir (created when the trainer starts).
        config: settings to show as hyperparameters, with the test results.
        log_every: iterations between two training-loss rows.
        enabled: False logs nothing.
    """

    name = "tensorboard"
    title = "TensorBoard"
    logs_epoch_number = False  # TensorBoard's step is the iteration; an epoch/epoch chart says nothing more

    def __init__(self, log_dir: str | Path, *, config: Mapping[str, Any] | None = None, log_every: int = 50,
                 enabled: bool = True) -> None:
        super().__init__(log_every=log_every, enabled=enabled)
        self.log_dir = Path(log_dir)
        self.config = dict(config or {})

    @classmethod
    def in_folder(cls, folder: str | Path, *, config: Mapping[str, Any] | None = None, log_every: int = 50
                  ) -> TensorboardTracker:
        """Event files in ``folder`` itself (a run directory: ``tensorboard --logdir`` names the run as its
        folder is named), ``config`` as the hyperparameters."""
        return cls(TensorboardSettings.log_dir(Path(folder)), config=config, log_every=log_every)

    def _make_logger(self) -> _TensorboardLogger:
        return _TensorboardLogger(self.guard)

    def _open(self) -> bool:
        try:
            import tensorboard  # noqa: F401 - torch's SummaryWriter needs it; Ignite's own message is misleading
        except ImportError:
            raise ModuleNotFoundError("the tensorboard package is not installed") from None
        iteration = self.step() or 0
        self.logger.open(self.log_dir, purge_step=iteration + 1 if iteration else None)
        note("info", f"TensorBoard logs in {self.log_dir}; view them with: tensorboard --logdir {self.log_dir}")
        return True

    def _log_test_report(self, evaluation: Evaluation) -> None:
        """``test/accuracy`` and ``test/loss`` with the settings as hyperparameters; the confusion matrix
        as a figure."""
        from ignite_mnist.training.plots import matplotlib_available, plot_confusion_matrix

        writer, step = self.logger.writer, self.step()
        writer.add_hparams(hparams(self.config), {"test/accuracy": evaluation.accuracy, "test/loss": evaluation.loss},
                           run_name=".", global_step=step)  # "." keeps them in this run's log dir
        if matplotlib_available():
            figure = plot_confusion_matrix(evaluation.confusion_matrix, evaluation.classes)
            writer.add_figure("test/confusion_matrix", figure, global_step=step)

    def _close(self, status: RunStatus, exit_code: int) -> None:
        self.logger.close()

    def state_dict(self) -> dict[str, Any]:
        """Nothing to carry: the log dir is the run directory's, the purge step the trainer's iteration."""
        return {}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Nothing to restore (see :meth:`state_dict`)."""
