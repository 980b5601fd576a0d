"""MLflow tracking: Ignite's ``MLflowLogger`` behind the tracker protocol.

Ignite supplies the logger and its handlers (the scalars of
:func:`~ignite_mnist.tracking.base.attach_scalars`; Ignite's MLflow handlers name
them ``train loss``, ``lr group_0``, ``val accuracy``, ``epoch train_loss``).
MLflow supplies the store and the files: the settings as the run's parameters,
``test accuracy``/``test loss``, the confusion matrix (``test/confusion_matrix.json``,
and a PNG with matplotlib) and the best checkpoint (``model/``) as artifacts.
Added here:

* an embedded default: without ``tracking_uri`` (``--mlflow-uri``,
  ``$MLFLOW_TRACKING_URI``) the run goes to a SQLite store in the run directory,
  its artifacts beside it: no server to start;
* the run opens when the trainer starts, after a resume restored its id, so a
  resumed training continues the same MLflow run (``state_dict`` holds the id);
* a SQLite store that cannot be written (read-only, damaged) is found out at once, not after
  MLflow's minute of retries: MLflow logging stops and training goes on;
* a server that does not answer costs a bounded time: unless
  ``$MLFLOW_HTTP_REQUEST_MAX_RETRIES``/``_TIMEOUT`` say otherwise, each request is
  tried 3 times, 10 s at most each (MLflow's own default retries for minutes),
  then MLflow logging stops and training goes on.

View a local store with ``mlflow ui --backend-store-uri sqlite:///<run dir>/mlflow.db``.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import sqlite3
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ignite.handlers.mlflow_logger import MLflowLogger

from ignite_mnist.console import note
from ignite_mnist.errors import first_line
from ignite_mnist.tracking.base import GuardedLogger, LoggerTracker
from ignite_mnist.tracking.mlflow_settings import MlflowSettings

if TYPE_CHECKING:
    from ignite_mnist.evaluation import Evaluation
    from ignite_mnist.tracking import RunStatus

__all__ = ["DEFAULT_EXPERIMENT", "HTTP_LIMITS", "MlflowTracker", "check_sqlite_store"]

DEFAULT_EXPERIMENT = "ignite-mnist"
#: MLflow's request settings used unless set in the environment: a dead server costs seconds, not minutes.
HTTP_LIMITS = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2", "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
               "MLFLOW_HTTP_REQUEST_TIMEOUT": "10"}
SQLITE_PREFIX = "sqlite:///"
#: Seconds to wait for another process's write lock on a SQLite store before giving up on it.
SQLITE_TIMEOUT = 10
_STATUS = {"finished": "FINISHED", "interrupted": "KILLED", "failed": "FAILED"}


@contextlib.contextmanager
def _quiet_mlflow() -> Iterator[None]:
    """MLflow's INFO lines (creating the store's tables) and its "View run at" lines held back: ours say it once."""
    logger = logging.getLogger("mlflow")
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            yield
    finally:
        logger.setLevel(level)


class _MLflowLogger(GuardedLogger, MLflowLogger):
    """Ignite's ``MLflowLogger``, taking MLflow's active run when :meth:`open` is called, not at construction."""

    def __init__(self, guard: Any) -> None:
        self.__dict__.update(guard=guard, active_run=None)  # set directly: the logger forwards attributes to mlflow

    def open(self) -> None:
        MLflowLogger.__init__(self)


def check_sqlite_store(path: str) -> None:
    """Fail at once on a SQLite store that cannot be written (read-only, not a database, no folder): MLflow itself
    retries such a store for over a minute. Writes the database's ``user_version`` back unchanged.

    Raises:
        RuntimeError: the store cannot be opened for writing; the message says why.
    """
    try:
        with contextlib.closing(sqlite3.connect(f"file:{path}?mode=rwc", uri=True, timeout=SQLITE_TIMEOUT)) as db:
            version = int(db.execute("PRAGMA user_version").fetchone()[0])
            db.execute(f"PRAGMA user_version = {version}")
    except sqlite3.Error as error:
        raise RuntimeError(f"cannot write its store {path}: {first_line(error)}") from None


class MlflowTracker(LoggerTracker):
    """One MLflow run and the handlers feeding it (a :class:`~ignite_mnist.tracking.Tracker`).

    Args:
        tracking_uri: the server (``http://host:5000``) or store (``sqlite:///path/mlflow.db``).
        artifacts_dir: where a new experiment keeps its artifacts (for a local store; a
            server has its own artifact root).
        experiment: the experiment's name (made when missing).
        run_name: the run's name (new runs only).
        params: settings to log as the run's parameters (new runs only: MLflow keeps
            parameters fixed).
        log_every: iterations between two training-loss rows.
        run_id: continue this MLflow run.
        enabled: False logs nothing.
    """

    name = "mlflow"
    title = "MLflow"

    def __init__(self, tracking_uri: str, *, artifacts_dir: str | Path | None = None,
                 experiment: str = DEFAULT_EXPERIMENT, run_name: str | None = None,
                 params: Mapping[str, Any] | None = None, log_every: int = 50, run_id: str | None = None,
                 enabled: bool = True) -> None:
        super().__init__(log_every=log_every, enabled=enabled)
        self.tracking_uri, self.experiment, self.run_name = tracking_uri, experiment, run_name
        self.artifacts_dir = Path(artifacts_dir) if artifacts_dir is not None else None
        self.params = dict(params or {})
        self.run_id = run_id

    @classmethod
    def in_folder(cls, folder: str | Path, *, config: Mapping[str, Any] | None = None, log_every: int = 50,
                  uri: str | None = None, experiment: str | None = None) -> MlflowTracker:
        """A run named as ``folder`` is, at ``uri`` (else ``$MLFLOW_TRACKING_URI``, else ``folder``'s own store),
        in ``experiment`` (else ``$MLFLOW_EXPERIMENT_NAME``, else ``ignite-mnist``), ``config`` as its parameters."""
        folder = Path(folder)
        uri = uri or os.environ.get("MLFLOW_TRACKING_URI")
        return cls(
            uri or f"sqlite:///{MlflowSettings.store(folder).resolve()}",
            artifacts_dir=MlflowSettings.artifacts_dir(folder) if uri is None else None,
            experiment=experiment or os.environ.get("MLFLOW_EXPERIMENT_NAME") or DEFAULT_EXPERIMENT,
            run_name=folder.name, params=config, log_every=log_every,
        )

    def _make_logger(self) -> _MLflowLogger:
        return _MLflowLogger(self.guard)

    def _open(self) -> bool:
        import mlflow

        for name, value in HTTP_LIMITS.items():
            os.environ.setdefault(name, value)
        if self.tracking_uri.startswith(SQLITE_PREFIX):
            check_sqlite_store(self.tracking_uri.removeprefix(SQLITE_PREFIX).partition("?")[0])
        with _quiet_mlflow():
            mlflow.set_tracking_uri(self.tracking_uri)
            if self.run_id is not None:
                run = mlflow.start_run(run_id=self.run_id)
            else:
                run = mlflow.start_run(experiment_id=self._experiment_id(), run_name=self.run_name)
                mlflow.log_params({name: str(value) for name, value in self.params.items()})
        self.run_id = run.info.run_id
        self.logger.open()
        where = (f"{self.tracking_uri}/#/experiments/{run.info.experiment_id}/runs/{self.run_id}"
                 if self.tracking_uri.startswith(("http://", "https://")) else
                 f"{self.tracking_uri}; view it with: mlflow ui --backend-store-uri {self.tracking_uri}")
        note("info", f"MLflow run {run.info.run_name}: {where}")
        return True

    def _experiment_id(self) -> str:
        import mlflow

        found = mlflow.get_experiment_by_name(self.experiment)
        if found is not None:
            return found.experiment_id
        location = self.artifacts_dir.resolve().as_uri() if self.artifacts_dir is not None else None
        return mlflow.create_experiment(self.experiment, artifact_location=location)

    def _log_test_report(self, evaluation: Evaluation) -> None:
        """``test accuracy`` and ``test loss``; the confusion matrix as JSON, and as a PNG with matplotlib."""
        import mlflow

        from ignite_mnist.training.plots import matplotlib_available, plot_confusion_matrix

        mlflow.log_metrics({"test accuracy": evaluation.accuracy, "test loss": evaluation.loss}, step=self.step())
        matrix = {"classes": list(evaluation.classes), "matrix": evaluation.confusion_matrix}
        mlflow.log_dict(matrix, "test/confusion_matrix.json")
        if matplotlib_available():
            figure = plot_confusion_matrix(evaluation.confusion_matrix, evaluation.classes)
            mlflow.log_figure(figure, "test/confusion_matrix.png")

    def _log_model(self, path: Path) -> None:
        """The best checkpoint, as the artifact ``model/<file name>``."""
        import mlflow

        mlflow.log_artifact(str(path), artifact_path="model")

    def _close(self, status: RunStatus, exit_code: int) -> None:
        import mlflow

        with _quiet_mlflow():
            mlflow.end_run(_STATUS[status])

    def state_dict(self) -> dict[str, Any]:
        return {"run_id": self.run_id}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Take the run id of a resumed run (before the run starts; a live run keeps its own)."""
        if not self.opened:
            self.run_id = state.get("run_id")
