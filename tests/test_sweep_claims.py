"""Workers of one study in several folders (or on several machines) count its trials and ask for a new one under
the study's own lock, so together they run the sweep's count and not one more.

The race this guards against was seen in CI: ``--jobs 2`` in one folder and a third worker in another folder
on one SQLite study made 7 trials for ``run_cap: 6`` (each folder's lock was held, but not a common one). Here it
is made deterministic: a worker holds its folder's lock, and with it the study's, while a worker in another
folder tries to take a trial; that worker must wait, and once it has its trial, the first finds the count met.
"""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from tests.test_sweep_spec import write

optuna = pytest.importorskip("optuna", reason="the sweep extra is not installed (pip install -e '.[sweep]')")

ONE_TRIAL = """\
name: shared
method: random
metric: {name: val/accuracy, goal: maximize}
parameters:
  lr: {min: 0.0001, max: 0.01, distribution: log_uniform_values}
run_cap: 1
"""
#: How long the other folder's worker must keep waiting while the study's lock is held.
HELD_SECONDS = 1.5


def a_second_folder_waits_for_the_study(storage: str, tmp_path: Path) -> None:
    """Folder ``a`` holds its lock (and the study's); a worker of folder ``b`` asks for the study's one trial."""
    from ignite_mnist.experiments.sweep import claim_trial, distributions, open_sweep
    from ignite_mnist.experiments.sweep_spec import SweepSpec

    spec = SweepSpec.load(write(tmp_path, ONE_TRIAL))
    first, study = open_sweep(spec, tmp_path / "a", storage=storage)
    space = distributions(spec)
    claims: list[object] = []

    def worker_in_another_folder() -> None:  # its own storage, opened in its own thread, as another process would
        second, its_study = open_sweep(spec, tmp_path / "b", storage=storage)
        with second.worker() as me:
            claims.append(claim_trial(its_study, second, me, 1, space))

    with first.lock():
        other = threading.Thread(target=worker_in_another_folder, daemon=True)
        other.start()
        other.join(HELD_SECONDS)
        assert other.is_alive(), "the worker in folder b took a trial while folder a's worker held the study"
        assert study.get_trials() == []
    other.join(120)
    assert not other.is_alive() and len(claims) == 1 and claims[0] is not None
    with first.worker() as me:
        assert claim_trial(study, first, me, 1, space) is None  # the study holds its one trial: no more
    assert [t.number for t in study.get_trials()] == [0]


def test_a_worker_in_another_folder_waits_for_the_sqlite_studys_lock(tmp_path: Path) -> None:
    a_second_folder_waits_for_the_study(f"sqlite:///{tmp_path / 'shared.db'}", tmp_path)
    assert (tmp_path / "shared.db-claims.lock").is_file()  # beside the database, where every worker reaches


def test_the_studys_own_folder_keeps_its_claims_lock_beside_its_database(tmp_path: Path) -> None:
    from ignite_mnist.experiments.sweep import claim_trial, distributions, open_sweep
    from ignite_mnist.experiments.sweep_spec import SweepSpec

    spec = SweepSpec.load(write(tmp_path, ONE_TRIAL))
    folder, study = open_sweep(spec, tmp_path / "runs")
    outside = tmp_path / "victim.txt"
    outside.write_text("unchanged")
    (folder.path / "study.db-claims.lock").symlink_to(outside)  # a planted link is replaced, never followed
    with folder.worker() as me:
        assert claim_trial(study, folder, me, 1, distributions(spec)) is not None
    assert outside.read_text() == "unchanged" and not (folder.path / "study.db-claims.lock").is_symlink()
