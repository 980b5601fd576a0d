import json
from pathlib import Path

import pytest

from ignite_mnist import TrainConfig, run
from ignite_mnist.storage.checkpoints import load_checkpoint
from ignite_mnist.storage.run_dir import read_metrics_log
from tests.conftest import assert_same_weights


def small_config(idx_root, tmp_path, **changes):
    values = {"data_dir": str(idx_root), "output_dir": str(tmp_path / "runs"), "val_size": 200, "epochs": 3,
                  "batch_size": 32, "progress": "none", "run_name": "r", "wandb_mode": "disabled"}
    values.update(changes)
    return TrainConfig.from_dict(values)


@pytest.fixture(scope="module")
def finished_run(idx_root, tmp_path_factory):
    config = small_config(idx_root, tmp_path_factory.mktemp("train"), epochs=4)
    return config, run(config)


def test_run_writes_config_metrics_and_summary(finished_run):
    config, summary = finished_run
    run_dir = summary.run_dir
    # config.json holds the settings, with the thread count --threads auto chose (1 here: $OMP_NUM_THREADS)
    assert json.loads(Path(f"{run_dir}/config.json").read_text()) == {**config.to_dict(), "threads": "1"}
    rows = read_metrics_log(f"{run_dir}/metrics.jsonl")
    assert [row["epoch"] for row in rows] == [1, 2, 3, 4]
    for row in rows:
        assert {"epoch", "train_loss", "val_loss", "val_accuracy", "lr", "seconds"} <= set(row)
        assert row["lr"] == 1e-3 and row["seconds"] > 0
    on_disk = json.loads(Path(f"{run_dir}/summary.json").read_text())
    assert on_disk == summary.to_dict()
    for key in ("test_accuracy", "test_loss", "best_val_accuracy", "epochs_completed", "train_seconds",
                "samples_per_second", "best_checkpoint"):
        assert key in on_disk
    assert on_disk["epochs_completed"] == 4 and on_disk["samples_per_second"] > 0


def test_training_loss_falls_and_the_model_learns(finished_run):
    _, summary = finished_run
    rows = read_metrics_log(f"{summary.run_dir}/metrics.jsonl")
    assert rows[-1]["train_loss"] < 0.5 * rows[0]["train_loss"]
    assert summary.test_accuracy > 0.9
    assert summary.best_val_accuracy == max(row["val_accuracy"] for row in rows)


def test_final_test_uses_the_best_checkpoint(finished_run):
    _, summary = finished_run
    best = load_checkpoint(f"{summary.run_dir}/{summary.best_checkpoint}")
    rows = read_metrics_log(f"{summary.run_dir}/metrics.jsonl")
    best_row = max(rows, key=lambda row: row["val_accuracy"])
    assert best["trainer"]["iteration"] == min(
        row["iteration"] for row in rows if row["val_accuracy"] == best_row["val_accuracy"])
    from ignite_mnist.data import TensorLoader, load_splits
    from ignite_mnist.engines import create_evaluator
    from ignite_mnist.models import build_model

    splits = load_splits(best["config"]["data_dir"], "mnist", val_size=200, seed=0)
    model = build_model("mlp")
    model.load_state_dict(best["model"])
    loader = TensorLoader(*splits.test, 1000, mean=splits.spec.mean, std=splits.spec.std)
    assert create_evaluator(model).run(loader).metrics["accuracy"] == summary.test_accuracy


def test_same_seed_same_result(idx_root, tmp_path):
    first = run(small_config(idx_root, tmp_path, run_name="a", epochs=2))
    second = run(small_config(idx_root, tmp_path, run_name="b", epochs=2))
    assert first.test_accuracy == second.test_accuracy and first.test_loss == second.test_loss
    a, b = (load_checkpoint(f"{s.run_dir}/{s.best_checkpoint}")["model"] for s in (first, second))
    assert_same_weights(a, b)


def test_early_stopping_on_a_plateau(idx_root, tmp_path):
    # A learning rate this small leaves validation accuracy flat: a plateau from epoch 1 on.
    summary = run(small_config(idx_root, tmp_path, epochs=20, lr=1e-12, patience=2))
    assert summary.stopped_early and summary.stopped_epoch == 3 and summary.epochs_completed == 3
    rows = read_metrics_log(f"{summary.run_dir}/metrics.jsonl")
    assert len(rows) == 3
    best = load_checkpoint(f"{summary.run_dir}/{summary.best_checkpoint}")
    assert best["trainer"]["iteration"] == rows[0]["iteration"]


def test_patience_counts_epochs_when_validating_every_second_epoch(idx_root, tmp_path):
    summary = run(small_config(idx_root, tmp_path, epochs=20, lr=1e-12, patience=4, val_every=2))
    # validations at epochs 2, 4, 6: two validations without improvement = four epochs
    assert summary.stopped_early and summary.stopped_epoch == 6


def test_iteration_validation_rows(idx_root, tmp_path):
    summary = run(small_config(idx_root, tmp_path, epochs=2, val_every_iterations=10))
    rows = read_metrics_log(f"{summary.run_dir}/metrics.jsonl")
    mid = [row for row in rows if row["kind"] == "validation"]
    # 1000 samples / 32 = 32 iterations per epoch; every 10 -> 10, 20, 30, 40, 50, 60 (none at epoch ends)
    assert [row["iteration"] for row in mid] == [10, 20, 30, 40, 50, 60]
    assert all(row["val_accuracy"] is not None for row in rows)


def test_best_k_files_are_the_k_best(idx_root, tmp_path):
    summary = run(small_config(idx_root, tmp_path, epochs=5, keep_best=2, val_every_iterations=7))
    rows = read_metrics_log(f"{summary.run_dir}/metrics.jsonl")
    scores = sorted((row["val_accuracy"] for row in rows), reverse=True)
    best_files = sorted(p for p in (tmp_path / "runs" / "r" / "checkpoints").glob("best_*.pt"))
    assert len(best_files) == 2
    on_disk = sorted((float(p.stem.split("=")[1]) for p in best_files), reverse=True)
    assert on_disk == pytest.approx(scores[:2], abs=1e-4)
