"""The study's database: a URL opened as Optuna's ``RDBStorage``, with heartbeats that retry a dead worker's trial.

Optuna provides the storage (SQLAlchemy under it), the heartbeat (each running
trial's row is touched every ``heartbeat_interval`` seconds by a thread, Optuna's
own) and the retry (``fail_stale_trials`` marks a trial whose heartbeat is older
than ``grace_period`` as failed, and its callback adds a copy of it, with the same
parameters, for the next worker to take). Added here:

* ``postgresql://`` means psycopg 3 (the driver the ``sweep`` extra installs),
  whatever SQLAlchemy's own default for the version installed;
* one line for a URL that is not one (exit 2) or a database that cannot be
  opened (exit 1), the password hidden;
* :func:`counted_trials`: a failed trial that was retried counts once, through its retry;
* :func:`study_lock`: the lock every worker of a study takes, wherever it runs, to count
  the trials and ask for a new one, so that workers in several folders or on several
  machines together run the sweep's count, not one more.

Example:
    >>> with_driver("postgresql://sweeps@db.example.org/sweeps")
    'postgresql+psycopg://sweeps@db.example.org/sweeps'
    >>> Heartbeat(interval=60).grace
    180
"""

from __future__ import annotations

import contextlib
import hashlib
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import optuna
from optuna.storages._heartbeat import BaseHeartbeat, get_heartbeat_thread  # no public names; optimize() uses them

from ignite_mnist.errors import ConfigError, SweepError, first_line
from ignite_mnist.storage.files import locked

__all__ = [
    "Heartbeat", "counted_trials", "keep_alive", "open_storage", "quiet_heartbeat_warnings", "record_heartbeat",
    "study_lock", "with_driver",
]

#: Seconds a worker waits for SQLite's write lock (workers share one file).
SQLITE_TIMEOUT = 60
#: Tries to open the study's database: workers that start together may both create a new one's tables.
STORAGE_ATTEMPTS = 5
#: The driver ``postgresql://`` stands for.
POSTGRES_DRIVER = "postgresql+psycopg"


@dataclass(frozen=True)
class Heartbeat:
    """How a dead worker's trials are found and retried (``--heartbeat``, ``--grace-period``, ``--retries``).

    Attributes:
        interval: seconds between a running trial's heartbeats; 0 turns heartbeats off.
        grace_period: seconds without a heartbeat after which the trial counts as dead
            (default: three intervals).
        retries: how many times one trial is retried after its worker died.
    """

    interval: int = 60
    grace_period: int | None = None
    retries: int = 2

    @property
    def enabled(self) -> bool:
        return self.interval > 0

    @property
    def grace(self) -> int:
        return self.grace_period if self.grace_period is not None else 3 * self.interval

    def storage_kwargs(self) -> dict[str, Any]:
        """``RDBStorage`` keyword arguments: the interval, the grace period, the retry callback."""
        if not self.enabled:
            return {}
        storages = optuna.storages
        if hasattr(storages, "RetryHeartbeatStaleTrialCallback"):  # Optuna >= 4.9 renamed it
            callback = {"heartbeat_stale_trial_callback": storages.RetryHeartbeatStaleTrialCallback(self.retries)}
        else:
            callback = {"failed_trial_callback": storages.RetryFailedTrialCallback(self.retries)}
        return {"heartbeat_interval": self.interval, "grace_period": self.grace, **callback}


def with_driver(url: str) -> str:
    """``postgresql://`` as psycopg 3's URL (other URLs, and a driver named in the URL, are kept)."""
    scheme, separator, rest = url.partition("://")
    return f"{POSTGRES_DRIVER}://{rest}" if separator and scheme == "postgresql" else url


def _shown(url: str) -> str:
    import sqlalchemy

    with contextlib.suppress(Exception):
        return sqlalchemy.engine.make_url(url).render_as_string(hide_password=True)
    return url


def _rdb_storage(url: str, heartbeat: Heartbeat) -> optuna.storages.RDBStorage:
    import sqlalchemy

    engine = {"connect_args": {"timeout": SQLITE_TIMEOUT}} if url.startswith("sqlite") else {}
    with warnings.catch_warnings():  # the heartbeat is "experimental" in Optuna's words; it is what we use
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        for _ in range(STORAGE_ATTEMPTS - 1):
            try:
                return optuna.storages.RDBStorage(url, engine_kwargs=engine, **heartbeat.storage_kwargs())
            except (sqlalchemy.exc.IntegrityError, sqlalchemy.exc.OperationalError) as error:
                if isinstance(error, sqlalchemy.exc.OperationalError) and "already exists" not in str(error):
                    raise
                time.sleep(1)  # another worker was creating the same new database's tables: they are there now
        return optuna.storages.RDBStorage(url, engine_kwargs=engine, **heartbeat.storage_kwargs())


def open_storage(url: str, heartbeat: Heartbeat | None = None) -> optuna.storages.RDBStorage:
    """Optuna's database storage at ``url`` (``postgresql://`` through psycopg 3).

    Raises:
        ConfigError: ``url`` is not a database URL (exit 2).
        SweepError: the database cannot be opened: a missing driver, a refused connection, a bad file (exit 1).
    """
    import sqlalchemy

    try:
        return _rdb_storage(with_driver(url), heartbeat or Heartbeat(interval=0))
    except sqlalchemy.exc.ArgumentError as error:
        raise ConfigError("--storage", f"{_shown(url)!r} is not a database URL ({first_line(error)}); for example "
                          "sqlite:///sweeps.db or postgresql://user@host/sweeps") from None
    except Exception as error:  # noqa: BLE001 - a missing driver, a refused connection, a bad file: one line
        raise SweepError(f"--storage {_shown(url)}: cannot open the study's database "
                         f"({type(error).__name__}: {first_line(error)})") from None


def counted_trials(study: optuna.Study) -> int:
    """The trials the sweep counts: all of them, but a failed trial that was retried counts through its retry."""
    trials = study.get_trials(deepcopy=False)
    retried = {t.system_attrs.get("failed_trial") for t in trials} - {None}
    return sum(1 for t in trials if t.number not in retried)


def keep_alive(study: optuna.Study, trial: optuna.Trial) -> contextlib.AbstractContextManager[Any]:
    """While the ``with`` block runs, the trial's heartbeat is recorded (Optuna's own thread; nothing without one).

    Optuna starts this thread only inside ``Study.optimize``; the sweep asks and tells itself, so it starts it here.
    """

    return cast(contextlib.AbstractContextManager[Any], get_heartbeat_thread(trial._trial_id, study._storage))


def record_heartbeat(study: optuna.Study, trial: optuna.Trial) -> None:
    """One heartbeat of ``trial`` now (when the storage keeps them): a worker that dies before its trial's
    heartbeat thread starts still leaves a trial that goes stale."""
    storage = study._storage  # Optuna's own loop does the same through this attribute
    if isinstance(storage, BaseHeartbeat) and storage.get_heartbeat_interval() is not None:
        storage.record_heartbeat(trial._trial_id)


def quiet_heartbeat_warnings() -> None:
    """Silence Optuna's warnings about the heartbeat: that it is "experimental", and meant for ``optimize``
    (the sweep asks and tells, and runs the heartbeat itself: :func:`keep_alive`)."""
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning, module="optuna")
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning, module="ignite_mnist")
    warnings.filterwarnings("ignore", message="Heartbeat of storage is supposed to be used with Study.optimize")


def _advisory_key(study_name: str) -> int:
    """The study's PostgreSQL advisory-lock key: a signed 64-bit number from its name (the same on every machine)."""
    digest = hashlib.sha256(f"ignite-mnist sweep {study_name}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


@contextlib.contextmanager
def study_lock(storage: optuna.storages.RDBStorage, study_name: str) -> Iterator[None]:
    """Hold the lock every worker of the study takes, whatever its folder or machine, while the ``with`` block runs.

    A worker counts the study's trials and asks for a new one under it, so that two
    workers asking at the same moment cannot both make the last trial. The lock lives
    where every worker of the study reaches: with PostgreSQL, a session advisory lock
    in the database (the server drops it when a worker's connection goes, however it
    goes); with SQLite, an ``flock`` on ``<database>-claims.lock`` beside the database
    file (SQLite is one machine's, or a shared disk's); an in-memory SQLite study has
    one process. Other databases (MySQL) have none: two workers asking at the same
    moment may together run one trial more than the sweep's count.
    """
    import sqlalchemy

    url = storage.engine.url
    backend = url.get_backend_name()
    if backend == "postgresql":
        key = {"key": _advisory_key(study_name)}
        with storage.engine.connect() as connection:
            connection.execute(sqlalchemy.text("SELECT pg_advisory_lock(:key)"), key)
            try:
                yield
            finally:
                connection.execute(sqlalchemy.text("SELECT pg_advisory_unlock(:key)"), key)
                connection.commit()
    elif backend == "sqlite" and url.database not in (None, "", ":memory:"):
        database = Path(str(url.database))
        with locked(database.with_name(f"{database.name}-claims.lock")):
            yield
    else:
        yield
