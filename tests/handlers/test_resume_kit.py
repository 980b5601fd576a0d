"""resume_training, the one restore path of a hand-written trainer and of the managed run: a finished run is said
to be finished and never trained again, a checkpoint of other epochs is refused before anything is restored, cut-short
saves go, and a checkpoint of another folder starts a new run."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from ignite.engine import Engine

from ignite_mnist.errors import CheckpointError, RunFinishedError
from ignite_mnist.handlers import (
    attach_checkpointing,
    attach_early_stopping,
    attach_metrics_log,
    attach_tracker,
    attach_validation,
    resumable_state,
    resume_training,
)
from ignite_mnist.storage.run_dir import read_metrics_log
from tests.handlers.test_custom_engine import ScriptedEvaluator


def trainer_in(folder: Path, scores: list[float] | None = None, patience: int | None = None) -> Engine:
    model = torch.nn.Linear(2, 2)
    trainer = Engine(lambda engine, batch: torch.tensor(0.5))
    attach_checkpointing(trainer, folder / "checkpoints", {"model": model}, monitor=None)
    attach_metrics_log(trainer, folder / "metrics.jsonl")
    if scores is not None:
        attach_validation(trainer, ScriptedEvaluator(scores), [0])
        attach_early_stopping(trainer, patience=patience or 2, monitor="val_accuracy", mode="max")
    return trainer


def files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_a_run_at_its_max_epochs_is_finished_and_never_started_over(tmp_path: Path) -> None:
    trainer_in(tmp_path).run(range(3), max_epochs=2)
    before = files(tmp_path)
    trainer = trainer_in(tmp_path)
    resumed = resume_training(tmp_path, trainer, max_epochs=2, data=range(3))
    assert resumed is not None and resumed.finished and (resumed.iteration, resumed.epoch) == (6, 2)
    assert str(resumed).endswith("last_checkpoint_6.pt: this run already finished at epoch 2 (iteration 6); "
                                 "nothing to train")
    with pytest.raises(RunFinishedError, match="already finished"):  # Ignite would start it over from epoch 1
        trainer.run(range(3), max_epochs=2)
    assert files(tmp_path) == before

    longer = trainer_in(tmp_path)  # more epochs: it goes on
    assert not resume_training(tmp_path, longer, max_epochs=3).finished
    longer.run(range(3), max_epochs=3)
    assert [row["iteration"] for row in read_metrics_log(tmp_path / "metrics.jsonl")] == [3, 6, 9]


def test_a_run_early_stopping_ended_is_finished_whatever_max_epochs_says(tmp_path: Path) -> None:
    scores = [0.9, 0.5, 0.5, 0.5, 0.5]
    trainer_in(tmp_path, scores, patience=2).run(range(2), max_epochs=5)
    trainer = trainer_in(tmp_path, scores, patience=2)
    resumed = resume_training(tmp_path, trainer, max_epochs=5)
    assert resumed is not None and resumed.finished and resumed.epoch == 3
    with pytest.raises(RunFinishedError):
        trainer.run(range(2), max_epochs=5)


def test_a_checkpoint_counting_other_epochs_is_refused_before_anything_is_restored(tmp_path: Path) -> None:
    trainer_in(tmp_path).run(range(3), max_epochs=1)
    trainer = trainer_in(tmp_path)
    with pytest.raises(CheckpointError, match="counts 3 iterations an epoch, this run's data 5"):
        resume_training(tmp_path, trainer, data=range(5))
    assert trainer.state.iteration == 0 and not resumable_state(trainer).restored


def test_cut_short_saves_are_removed_on_a_fresh_start_and_on_a_resume(tmp_path: Path) -> None:
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints" / "tmpa1b2c3d4").write_bytes(b"half")
    assert resume_training(tmp_path, trainer_in(tmp_path)) is None  # nothing to resume, and the stray is gone
    assert not (tmp_path / "checkpoints" / "tmpa1b2c3d4").exists()
    trainer_in(tmp_path).run(range(3), max_epochs=1)
    (tmp_path / "checkpoints" / "tmpz9y8x7w6").write_bytes(b"half")
    resumed = resume_training(tmp_path, trainer_in(tmp_path), max_epochs=2)
    assert resumed is not None and [p.name for p in resumed.removed] == ["tmpz9y8x7w6"]


def test_a_checkpoint_of_another_folder_starts_a_new_run_with_its_own_rotation_and_tracker(tmp_path: Path) -> None:
    first = trainer_in(tmp_path / "a")
    attach_tracker(first, "tensorboard", tmp_path / "a", log_every=1)
    first.run(range(3), max_epochs=1)
    second = trainer_in(tmp_path / "b")
    tracker = attach_tracker(second, "tensorboard", tmp_path / "b", log_every=1)
    resumed = resume_training(tmp_path / "a", second, max_epochs=2)
    assert resumed is not None and not resumed.in_place
    assert "checkpointer" not in resumed.restored and "tensorboard" not in resumed.restored
    assert {"trainer", "model", "metrics_log"} <= set(resumed.restored)
    second.run(range(3), max_epochs=2)
    assert sorted(p.name for p in (tmp_path / "b" / "checkpoints").iterdir()) == ["last_checkpoint_6.pt"]
    assert tracker.step() == 6
