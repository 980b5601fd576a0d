"""``ignite-mnist sweep`` and ``compare`` on real MNIST: small trials (1 epoch, batches of 1000, one thread).

One sweep (a 2 x 3 grid with pruning) is killed with SIGKILL in its third trial and started
again; the other tests read it back: the study, the trials' run directories, the best
trial's reproduction, the comparison.
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from ignite_mnist.cli import main
from ignite_mnist.storage.run_dir import RunDir
from ignite_mnist.training.plots import FIGURE_PIXELS
from tests.conftest import assert_same_weights, run_cli
from tests.inference.test_plots import png_size

optuna = pytest.importorskip("optuna", reason="the sweep extra is not installed (pip install -e '.[sweep]')")

pytestmark = pytest.mark.integration

#: A short trial: one epoch of 10,000 images in batches of 1000 (half of MNIST's training set held out).
QUICK_TRIAL = """\
  epochs: {value: 1}
  batch_size: {value: 1000}
  val_size: {value: 50000}
  plots: {value: false}
  wandb_mode: {value: disabled}
"""
#: Trials of 30 iterations, validated and checkpointed every 10: pruned at a validation, killed after a checkpoint.
GRID = """\
name: lr-seed
program: examples/train_mnist.py
method: grid
metric: {name: val/accuracy, goal: maximize}
parameters:
  lr: {values: [0.003, 0.00001]}
  seed: {values: [0, 1, 2]}
  epochs: {value: 1}
  batch_size: {value: 1000}
  val_size: {value: 30000}
  val_every_iterations: {value: 10}
  checkpoint_every: {value: 10}
  plots: {value: false}
  wandb_mode: {value: disabled}
early_terminate: {type: hyperband, min_iter: 1, eta: 2}
"""
ONE_THREAD = {"OMP_NUM_THREADS": "1", "WANDB_MODE": "disabled"}


def last_weights(run_dir: Path) -> dict[str, torch.Tensor]:
    return torch.load(RunDir(run_dir).latest_checkpoint(), weights_only=True)["model"]


def wait_for_a_checkpointed_third_trial(folder: Path, process: subprocess.Popen, timeout: float = 300) -> None:
    """Until two trials have finished and a third has written a checkpoint (the moment to kill the sweep)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, "the sweep ended before it could be killed"
        trials = sorted(folder.glob("trial-*"))
        finished = [t for t in trials if (t / "summary.json").exists()]
        if len(finished) >= 2 and any(list(t.glob("checkpoints/last_checkpoint_*.pt")) for t in trials
                                      if t not in finished):
            return
        time.sleep(0.05)
    raise AssertionError("no third trial checkpointed in time")


@pytest.fixture(scope="module")
def killed_sweep(mnist_root: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The grid sweep, SIGKILLed in its third trial and started again; what the tests need to know of it."""
    work = tmp_path_factory.mktemp("sweep")
    (work / "lr-seed.yaml").write_text(GRID)
    args = ["sweep", str(work / "lr-seed.yaml"), "--output-dir", str(work / "runs"), "--pruner", "median"]
    env = dict(os.environ, **ONE_THREAD)
    folder = work / "runs" / "lr-seed"
    with open(work / "first.log", "w") as log:
        first = subprocess.Popen([sys.executable, "-m", "ignite_mnist", *args], stdout=log, stderr=subprocess.STDOUT,
                                 env=env)
        try:
            wait_for_a_checkpointed_third_trial(folder, first)
        finally:
            first.send_signal(signal.SIGKILL)
            first.wait()
    study = optuna.load_study(study_name="lr-seed", storage=f"sqlite:///{folder / 'study.db'}")
    (killed,) = [t.number for t in study.trials if t.state == optuna.trial.TrialState.RUNNING]
    finished = {p.parent.name: p.stat().st_mtime_ns for p in folder.glob("trial-*/summary.json")}
    again = run_cli(*args, env=ONE_THREAD)
    return {"folder": folder, "killed": killed, "finished_before": finished, "again": again,
            "first_log": (work / "first.log").read_text()}


def test_a_killed_sweep_goes_on_where_it_stopped_and_runs_no_trial_twice(killed_sweep):
    again, folder, killed = killed_sweep["again"], killed_sweep["folder"], killed_sweep["killed"]
    assert again.returncode == 0, again.stderr
    study = optuna.load_study(study_name="lr-seed", storage=f"sqlite:///{folder / 'study.db'}")
    states = [t.state.name for t in study.trials]
    assert [t.number for t in study.trials] == list(range(6))
    assert set(states) == {"COMPLETE", "PRUNED"}, states  # some pruned, none failed, none left running
    assert sorted((t.params["lr"], t.params["seed"]) for t in study.trials) == sorted(
        (lr, seed) for lr in (0.003, 0.00001) for seed in (0, 1, 2))  # each grid point once
    assert sorted(p.name for p in folder.glob("trial-*")) == [f"trial-{n:04d}" for n in range(6)]
    # the trials that had finished were not touched; the killed one went on from its checkpoint
    for name, mtime in killed_sweep["finished_before"].items():
        assert (folder / name / "summary.json").stat().st_mtime_ns == mtime, name
    assert f"trial {killed}: resumed" in again.stdout
    assert not any(f"trial {n}: " in again.stdout for n in range(killed))
    summary = json.loads((folder / f"trial-{killed:04d}" / "summary.json").read_text())
    assert summary["resumed_at"] and summary["epochs_completed"] == 1
    resumed = study.trials[killed]
    assert resumed.state.name == "COMPLETE" and sorted(resumed.intermediate_values) == [1, 2, 3]
    for trial in study.trials:  # pruned trials stopped early and still tested their best weights
        rows = [json.loads(line) for line in (folder / f"trial-{trial.number:04d}" / "metrics.jsonl").open()]
        assert (rows[-1]["iteration"] < 30) == (trial.state.name == "PRUNED")
        assert (folder / f"trial-{trial.number:04d}" / "summary.json").is_file()


def test_the_sweep_ends_with_the_comparison_and_the_best_command_lines(killed_sweep):
    out, folder = killed_sweep["again"].stdout, killed_sweep["folder"]
    study = optuna.load_study(study_name="lr-seed", storage=f"sqlite:///{folder / 'study.db'}")
    best = study.best_trial
    assert f"sweep {folder}: 6 trials" in out
    good = [line for line in out.splitlines() if " 0.003 " in line and " complete " in line]
    assert len(good) == 1 and "±" in good[0]  # the good learning rate's trials share a row: mean ± std over seeds
    assert f"best: trial-{best.number:04d} (val/accuracy {best.value:.4f}), trained by:" in out
    trained_by, again = (line.strip() for line in out.strip().splitlines()[-3::2])
    assert trained_by.startswith("ignite-mnist --") and f"--lr={best.params['lr']}" in trained_by
    assert again == (f"ignite-mnist --config {folder / f'trial-{best.number:04d}' / 'config.json'} "
                     f"--output-dir {folder.parent} --run-name lr-seed-best")


def train_in_process(args: list[str], run_dir: Path) -> dict[str, torch.Tensor]:
    """Train ``ignite-mnist ARGS`` in this process, one thread as the sweep's trials had; its last weights."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        assert main([*args, "--output-dir", str(run_dir.parent), "--run-name", run_dir.name, "--progress", "none"]) == 0
    finally:
        torch.set_num_threads(threads)
    return last_weights(run_dir)


@pytest.mark.parametrize("line", [-3, -1], ids=["its-command-line", "its-config-json"])
def test_the_best_trial_trains_again_bit_for_bit(killed_sweep, tmp_path, line):
    folder = killed_sweep["folder"]
    study = optuna.load_study(study_name="lr-seed", storage=f"sqlite:///{folder / 'study.db'}")
    command = shlex.split(killed_sweep["again"].stdout.strip().splitlines()[line])
    expected = last_weights(folder / f"trial-{study.best_trial.number:04d}")
    assert_same_weights(expected, train_in_process(command[1:], tmp_path / "again"))


def test_the_killed_trial_ends_as_if_never_killed(killed_sweep, tmp_path):
    folder, killed = killed_sweep["folder"], killed_sweep["killed"]
    command = next(line for line in killed_sweep["again"].stdout.splitlines() if f"trial {killed}: resumed" in line)
    args = shlex.split(command.partition(": resumed in ")[2].partition(": ")[2])
    assert_same_weights(last_weights(folder / f"trial-{killed:04d}"), train_in_process(args, tmp_path / "fresh"))


def test_compare_a_sweep_as_markdown_csv_and_a_plot(killed_sweep, tmp_path, capsys):
    folder = killed_sweep["folder"]
    assert main(["compare", str(folder), "--format", "markdown", "--output", str(tmp_path / "t.md"),
                 "--plot", str(tmp_path / "curves.png")]) == 0
    table = (tmp_path / "t.md").read_text().splitlines()
    assert table[0].startswith("| run | lr | seed | state | val_accuracy | best_val_accuracy |")
    rows = [row.split(" | ") for row in table[2:]]
    assert sorted(name for row in rows for name in row[0].removeprefix("| ").split(", ")) == [
        f"trial-{n:04d}" for n in range(6)]  # every trial, in one row
    assert any("±" in row[4] for row in rows)  # runs that differ only by seed: mean ± std
    assert png_size(tmp_path / "curves.png") == FIGURE_PIXELS["comparison"]
    capsys.readouterr()
    assert main(["compare", str(folder), "--format", "csv"]) == 0
    header, *lines = capsys.readouterr().out.strip().splitlines()
    assert header.startswith("run,lr,seed,state,val_accuracy,") and len(lines) == 6  # one row per trial


def test_compare_a_sweeps_output_dir_compares_each_sweeps_trials(killed_sweep, tmp_path, capsys):
    folder = killed_sweep["folder"]
    assert main(["compare", str(folder.parent), "--format", "csv"]) == 0  # the sweep's --output-dir
    _, *lines = capsys.readouterr().out.strip().splitlines()
    assert sorted(line.split(",")[0] for line in lines) == [f"lr-seed/trial-{n:04d}" for n in range(6)]
    (tmp_path / "empty").mkdir()
    assert main(["compare", str(tmp_path / "empty")]) == 1
    assert "nor a folder of runs or of sweeps; name a run directory" in capsys.readouterr().err


def test_compare_two_run_directories(killed_sweep, capsys):
    folder = killed_sweep["folder"]
    assert main(["compare", str(folder / "trial-0000"), str(folder / "trial-0001")]) == 0
    header, *rows = capsys.readouterr().out.strip().splitlines()
    configs = [json.loads((folder / name / "config.json").read_text()) for name in ("trial-0000", "trial-0001")]
    differing = [k for k in configs[0] if k != "run_name" and configs[0][k] != configs[1][k]]
    assert differing and header.split()[:len(differing) + 2] == ["run", *differing, "state"]
    assert [row.split()[0] for row in rows] == ["trial-0000", "trial-0001"]
    assert all("finished" in row for row in rows)  # plain runs: no study, their own state


BAYES = f"""\
name: bayes
method: bayes
metric: {{name: best_val_loss, goal: minimize}}
parameters:
  lr: {{min: 0.0005, max: 0.01, distribution: log_uniform_values}}
  seed: {{values: [0, 1, 2, 3]}}
{QUICK_TRIAL}run_cap: 6
"""


def test_workers_share_one_study_without_duplicate_trials(mnist_root, tmp_path):
    """``--jobs 2`` in one folder, and a third worker in another folder as a second machine would run it
    (its own disk, the study in a database both reach: ``--storage``)."""
    (tmp_path / "bayes.yaml").write_text(BAYES)
    storage = f"sqlite:///{tmp_path / 'shared.db'}"
    args = ["sweep", str(tmp_path / "bayes.yaml"), "--storage", storage]
    other = subprocess.Popen([sys.executable, "-m", "ignite_mnist", *args, "--output-dir", str(tmp_path / "b")],
                             env=dict(os.environ, **ONE_THREAD), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                             text=True)
    result = run_cli(*args, "--output-dir", str(tmp_path / "a"), "--jobs", "2", env=ONE_THREAD)
    other_out = other.communicate(timeout=600)[0]
    assert result.returncode == 0 and other.returncode == 0, result.stderr + other_out
    study = optuna.load_study(study_name="bayes", storage=storage)
    assert [t.number for t in study.trials] == list(range(6))
    assert {t.state.name for t in study.trials} == {"COMPLETE"}
    workers = [t.user_attrs["worker"] for t in study.trials]
    assert len({(w["folder"], w["pid"]) for w in workers}) >= 2  # trials ran side by side
    assert len({(t.params["lr"], t.params["seed"]) for t in study.trials}) == 6
    # each trial trained once, start to end, in its worker's folder
    for trial, worker in zip(study.trials, workers, strict=False):
        run_dir = Path(worker["folder"]) / f"trial-{trial.number:04d}"
        summary = json.loads((run_dir / "summary.json").read_text())
        assert summary["resumed_at"] == [] and summary["epochs_completed"] == 1
        assert trial.value == pytest.approx(min(json.loads(line)["val_loss"] for line in
                                                (run_dir / "metrics.jsonl").open()))
    trial_dirs = sorted(p.name for p in (*tmp_path.glob("a/bayes/trial-*"), *tmp_path.glob("b/bayes/trial-*")))
    assert trial_dirs == [f"trial-{n:04d}" for n in range(6)]  # no trial in both folders
    assert not list((tmp_path / "a" / "bayes" / "workers").iterdir())  # each worker took its lock file away
    assert "sweep " in result.stdout and "6 trials (6 complete)" in result.stdout


def test_a_wandb_agent_command_line_trains(mnist_root, tmp_path):
    """The arguments come from W&B's own code: what ``wandb agent`` appends to the program for ``${args}``."""
    from wandb.sdk.launch.sweeps.utils import create_sweep_command_args

    params = {"lr": 0.003, "batch_size": 1000, "epochs": 1, "val_size": 50000, "augment": True, "plots": False,
              "patience": None, "wandb_mode": "disabled", "output_dir": str(tmp_path), "run_name": "agent"}
    args = create_sweep_command_args({"args": {k: {"value": v} for k, v in params.items()}})["args"]
    assert "--augment=True" in args and "--plots=False" in args and "--batch_size=1000" in args
    assert main([*args, "--progress=none"]) == 0
    config = json.loads((tmp_path / "agent" / "config.json").read_text())
    assert {k: config[k] for k in params} == params
