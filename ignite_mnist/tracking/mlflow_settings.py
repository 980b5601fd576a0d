"""The MLflow tracker's own settings (``--mlflow-*``) and the local store it keeps in the run directory.

Read without torch or MLflow; the tracker itself is :mod:`ignite_mnist.tracking.mlflow`.
``$MLFLOW_*`` variables work as usual: a setting left at None falls back to its variable.

Example:
    >>> from pathlib import Path
    >>> MlflowSettings.store(Path("runs/r")), MlflowSettings.artifacts_dir(Path("runs/r"))
    (PosixPath('runs/r/mlflow.db'), PosixPath('runs/r/mlartifacts'))
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from ignite_mnist.settings.fields import TrackerSettings, setting

__all__ = ["MlflowSettings"]


@dataclass
class MlflowSettings(TrackerSettings):
    """MLflow: the tracking server or store, and the experiment."""

    #: The local store (SQLite) and its artifacts, used without --mlflow-uri and $MLFLOW_TRACKING_URI.
    FILES: ClassVar[tuple[str, ...]] = ("mlflow.db", "mlartifacts")

    mlflow_uri: str | None = setting(
        None, "MLflow tracking server (http://host:5000) or store (default: $MLFLOW_TRACKING_URI, else a local "
        "store in <run dir>/mlflow.db)", type=str,
    )
    mlflow_experiment: str | None = setting(
        None, "MLflow experiment (default: $MLFLOW_EXPERIMENT_NAME or ignite-mnist)", type=str
    )

    @classmethod
    def store(cls, run: Path) -> Path:
        """The local store of the run in folder ``run``: ``mlflow ui --backend-store-uri sqlite:///<this path>``."""
        return run / cls.FILES[0]

    @classmethod
    def artifacts_dir(cls, run: Path) -> Path:
        """Where the local store keeps its runs' artifacts (the best checkpoint)."""
        return run / cls.FILES[1]
