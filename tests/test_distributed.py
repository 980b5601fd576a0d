"""Distributed training: 2 CPU processes on gloo, started by ``--nproc-per-node`` and by ``torchrun``.

All runs below train the same tiny configuration on generated IDX data, so their
weights can be compared bit for bit: a 2-process run is deterministic on CPU.
NCCL (GPUs) cannot be tested on this machine.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import torch

from ignite_mnist import TrainConfig, run
from ignite_mnist.cli import parse_train_args
from ignite_mnist.data import LoaderOptions, TensorLoader, build_loaders, load_splits, normalise
from ignite_mnist.engines import create_evaluator
from ignite_mnist.errors import ConfigError
from ignite_mnist.models import build_model
from ignite_mnist.storage.checkpoints import load_checkpoint
from tests.conftest import REPO, assert_same_weights, run_cli
from tests.handlers.test_wandb import inspect

pytestmark = pytest.mark.slow  # two-process runs (spawn and torchrun) in subprocesses

DRIVER = Path(__file__).with_name("dist_driver.py")
EPOCHS = 3
VAL_SIZE = 200  # the fixture's 1200 training images -> 1000 train, 500 per rank


def train_flags(data: Path, output: Path, run_name: str) -> list[str]:
    return [
        "--data-dir", str(data), "--val-size", str(VAL_SIZE), "--epochs", str(EPOCHS), "--batch-size", "32",
        "--checkpoint-every", "5", "--backend", "gloo", "--device", "cpu", "--progress", "none", "--no-plots",
        "--output-dir", str(output), "--run-name", run_name,
    ]


def quiet_env(tmp: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("WANDB_API_KEY", "MASTER_PORT", "WORLD_SIZE")}
    env.update(WANDB_DIR=str(tmp / "wandb-dir"), WANDB_SILENT="true", PYTHONPATH=str(REPO), **extra)
    (tmp / "wandb-dir").mkdir(parents=True, exist_ok=True)
    return env


def last_weights(run_dir: Path) -> dict[str, torch.Tensor]:
    last = max(run_dir.glob("checkpoints/last_checkpoint_*.pt"), key=lambda p: int(p.stem.rsplit("_", 1)[1]))
    return load_checkpoint(last)["model"]


@pytest.fixture(scope="module")
def spawned(idx_root: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One 2-process run (``launch`` spawning 2 gloo processes) with W&B offline, observed on both ranks."""
    tmp = tmp_path_factory.mktemp("spawned")
    flags = [*train_flags(idx_root, tmp / "runs", "two"), "--nproc-per-node", "2", "--wandb-mode", "offline"]
    done = subprocess.run([sys.executable, str(DRIVER), str(tmp / "ranks"), *flags], env=quiet_env(tmp),
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    ranks = [torch.load(tmp / "ranks" / f"rank{r}.pt", weights_only=True) for r in (0, 1)]
    return {"tmp": tmp, "run_dir": tmp / "runs" / "two", "ranks": ranks,
            "summary": json.loads((tmp / "runs" / "two" / "summary.json").read_text()), "stderr": done.stderr}


def test_both_ranks_hold_identical_trained_weights(spawned: dict[str, Any]) -> None:
    rank0, rank1 = spawned["ranks"]
    assert rank0["world_size"] == rank1["world_size"] == 2
    assert rank0["wrapper"] == rank1["wrapper"] == "DistributedDataParallel"
    assert_same_weights(rank0["trained"], rank1["trained"])
    untrained = build_model("mlp").state_dict()
    assert not torch.equal(rank0["trained"]["1.weight"], untrained["1.weight"])


def test_each_rank_saw_a_disjoint_half_of_every_epoch(spawned: dict[str, Any]) -> None:
    rank0, rank1 = spawned["ranks"]
    assert sorted(rank0["orders"]) == sorted(rank1["orders"]) == list(range(EPOCHS))
    for epoch in range(EPOCHS):
        a, b = set(rank0["orders"][epoch].tolist()), set(rank1["orders"][epoch].tolist())
        assert len(a) == len(b) == 500
        assert a.isdisjoint(b) and a | b == set(range(1000))
    assert not torch.equal(rank0["orders"][0], rank0["orders"][1])  # reshuffled each epoch


def test_reported_test_accuracy_equals_single_process_evaluation(spawned: dict[str, Any], idx_root: Path) -> None:
    summary = spawned["summary"]
    assert spawned["ranks"][1]["summary"]["test_accuracy"] == summary["test_accuracy"]  # metrics were reduced
    checkpoint = load_checkpoint(Path(summary["run_dir"]) / summary["best_checkpoint"])
    model = build_model("mlp")
    model.load_state_dict(checkpoint["model"])  # strict: no "module." prefixes
    splits = load_splits(idx_root, "mnist", val_size=VAL_SIZE, seed=0)
    test = TensorLoader(*splits.test, 1000, mean=splits.spec.mean, std=splits.spec.std)
    metrics = create_evaluator(model).run(test).metrics
    assert metrics["accuracy"] == summary["test_accuracy"]
    assert metrics["loss"] == pytest.approx(summary["test_loss"], rel=1e-5)


def test_one_run_dir_one_checkpoint_set_one_wandb_run(spawned: dict[str, Any]) -> None:
    tmp, run_dir = spawned["tmp"], spawned["run_dir"]
    assert [d.name for d in (tmp / "runs").iterdir()] == ["two"]
    names = sorted(p.name for p in (run_dir / "checkpoints").iterdir())
    assert names and all(n.startswith(("last_checkpoint_", "best_checkpoint_")) and n.endswith(".pt") for n in names)
    assert len([n for n in names if n.startswith("last_")]) == 2  # rank 0 rotated them, nobody else wrote
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [row["epoch"] for row in rows if row["kind"] == "epoch"] == list(range(1, EPOCHS + 1))
    wandb_runs = list((tmp / "wandb-dir").rglob("offline-run-*"))
    assert len(wandb_runs) == 1, wandb_runs


def test_wandb_confusion_matrix_counts_both_ranks_test_shares(spawned: dict[str, Any]) -> None:
    (wandb_run,) = (spawned["tmp"] / "wandb-dir").rglob("offline-run-*")
    logged = inspect(wandb_run, "--summary")["summary"]
    table = json.loads((wandb_run / "files" / logged["test/confusion_matrix_table"]["path"]).read_text())
    counts = {(actual, predicted): n for actual, predicted, n in table["data"]}
    assert sum(counts.values()) == 300  # the whole test set, not rank 0's 150
    correct = sum(n for (actual, predicted), n in counts.items() if actual == predicted)
    assert correct / 300 == pytest.approx(spawned["summary"]["test_accuracy"])


def test_torchrun_launch_trains_the_same_weights(spawned: dict[str, Any], idx_root: Path, tmp_path: Path) -> None:
    torchrun = shutil.which("torchrun", path=str(Path(sys.executable).parent))
    assert torchrun is not None
    done = subprocess.run(
        [torchrun, "--standalone", "--nproc-per-node", "2", "-m", "ignite_mnist",
         *train_flags(idx_root, tmp_path / "runs", "tr"), "--wandb-mode", "disabled"],
        env=quiet_env(tmp_path), capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count("test accuracy") == 1  # rank 0 reports, rank 1 stays quiet
    summary = json.loads((tmp_path / "runs" / "tr" / "summary.json").read_text())
    assert summary["test_accuracy"] == spawned["summary"]["test_accuracy"]
    assert_same_weights(last_weights(tmp_path / "runs" / "tr"), last_weights(spawned["run_dir"]))
    assert_same_weights(last_weights(spawned["run_dir"]), spawned["ranks"][0]["trained"])


def test_sigterm_then_resume_of_a_two_process_run(spawned: dict[str, Any], idx_root: Path, tmp_path: Path) -> None:
    flags = [*train_flags(idx_root, tmp_path / "runs", "k"), "--nproc-per-node", "2", "--wandb-mode", "disabled"]
    process = subprocess.Popen([sys.executable, "-m", "ignite_mnist", *flags], env=quiet_env(tmp_path),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    checkpoints = tmp_path / "runs" / "k" / "checkpoints"
    try:
        deadline = time.monotonic() + 240
        while not list(checkpoints.glob("last_checkpoint_*.pt")) and process.poll() is None:
            assert time.monotonic() < deadline, "no checkpoint appeared"
            time.sleep(0.02)
        process.send_signal(signal.SIGTERM)  # to the launcher only: it forwards to both ranks
        _, stderr = process.communicate(timeout=240)
    finally:
        if process.poll() is None:  # a hang: leave no processes behind
            os.killpg(process.pid, signal.SIGKILL)
    assert process.returncode == 143, stderr[-3000:]
    assert "interrupted by SIGTERM" in stderr and "rank " in stderr
    assert len(list(checkpoints.glob("last_checkpoint_*.pt"))) >= 1
    rng = load_checkpoint(max(checkpoints.glob("last_checkpoint_*.pt"), key=lambda p: p.stat().st_mtime))["rng"]
    assert len(rng["ranks"]) == 2 and not torch.equal(rng["ranks"][0]["torch"], rng["ranks"][1]["torch"])

    # another world size: a copy of the run goes on in this single process
    shutil.copytree(tmp_path / "runs" / "k", tmp_path / "runs" / "k1")
    single = run(parse_train_args(["--resume", "auto", "--output-dir", str(tmp_path / "runs"), "--run-name", "k1",
                                   "--nproc-per-node", "1"]))
    assert single.epochs_completed == EPOCHS and single.test_accuracy > 0.5

    resumed = run_cli("--resume", "auto", "--output-dir", str(tmp_path / "runs"), "--run-name", "k",
                      env=quiet_env(tmp_path), timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    summary = json.loads((tmp_path / "runs" / "k" / "summary.json").read_text())
    assert summary["epochs_completed"] == EPOCHS and summary["resumed_from"]
    # same number of processes: the resumed run ends with exactly the uninterrupted run's weights
    assert_same_weights(last_weights(tmp_path / "runs" / "k"), last_weights(spawned["run_dir"]))


def test_error_on_one_rank_stops_all_and_names_it(idx_root: Path, tmp_path: Path) -> None:
    run_dir = tmp_path / "runs" / "taken"
    (run_dir / "checkpoints").mkdir(parents=True)
    (run_dir / "config.json").write_text("{}")  # only rank 0 creates the run dir, so only rank 0 fails
    (run_dir / "checkpoints" / "last_checkpoint_1.pt").write_bytes(b"")  # a run with checkpoints is not set aside
    flags = [*train_flags(idx_root, tmp_path / "runs", "taken"), "--nproc-per-node", "2", "--wandb-mode", "disabled"]
    done = run_cli(*flags, env=quiet_env(tmp_path), timeout=300)
    assert done.returncode == 1
    errors = [line for line in done.stderr.splitlines() if "error" in line.lower()]
    assert len(errors) == 1, done.stderr[-3000:]  # the root cause, not rank 1's lost connection
    assert errors[0].startswith(f"ignite-mnist: error: rank 0: {run_dir} already holds a run")


def test_validation_and_test_sets_are_split_without_loss_or_overlap(idx_root: Path) -> None:
    splits = load_splits(idx_root, "mnist", val_size=201, seed=0)  # odd size: rank 0 takes one more
    shards = [build_loaders(splits, LoaderOptions(batch_size=16, seed=0, rank=r, world_size=2)) for r in (0, 1)]
    for which, (images, _) in ((1, splits.val), (2, splits.test)):
        seen = [torch.cat([x for x, _ in shard[which]]) for shard in shards]
        assert len(seen[0]) + len(seen[1]) == len(images)  # nothing dropped, nothing twice
        for rank in (0, 1):  # rank r evaluates samples r, r + 2, r + 4, ...
            assert torch.equal(seen[rank], normalise(images[rank::2], splits.spec.mean, splits.spec.std))


@pytest.mark.parametrize(("flags", "message"), [
    (["--backend", "nccl", "--device", "cpu"], "--backend: nccl runs on CUDA GPUs only"),
    (["--nproc-per-node", "2", "--batch-size", "33"], "--batch-size: 33 cannot be split evenly"),
])
def test_bad_distributed_settings_are_usage_errors(flags: list[str], message: str, tmp_path: Path) -> None:
    done = run_cli(*flags, "--output-dir", str(tmp_path), "--data-dir", str(tmp_path))
    assert done.returncode == 2
    assert done.stderr.startswith(f"ignite-mnist: error: {message}") and "Traceback" not in done.stderr


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message shown without a GPU")
def test_nccl_without_a_gpu_is_refused_before_starting_processes(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="nccl needs CUDA GPUs"):
        run(TrainConfig(nproc_per_node=2, backend="nccl", output_dir=str(tmp_path), data_dir=str(tmp_path)))
