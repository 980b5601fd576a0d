"""Sweep files and W&B agent command lines, without training: W&B's own code is the reference."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import pytest

from ignite_mnist import registry
from ignite_mnist.cli import main, parse_train_args
from ignite_mnist.errors import ConfigError
from ignite_mnist.experiments.sweep_spec import SweepSpec, agent_args
from tests.conftest import REPO

VALID = """\
method: random
metric: {name: val/accuracy, goal: maximize}
parameters:
  lr: {min: 0.0001, max: 0.01, distribution: log_uniform_values}
  batch_size: {values: [64, 128]}
run_cap: 3
"""


def write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "sweep.yaml"
    path.write_text(text)
    return str(path)


@pytest.mark.parametrize(("text", "expected"), [
    ("method: grid\nparameters: {lr: {values: [0.1]}}\n", "metric: missing"),
    (VALID.replace("method: random", "method: hyperopt"), "method: must be one of grid, random, bayes"),
    (VALID.replace("batch_size:", "batch_sise:"), "parameters: batch_sise: unrecognized arguments: --batch_sise=64"),
    (VALID.replace("{values: [64, 128]}", "{values: [64, -1]}"), "parameters: batch_size: --batch-size: must be > 0"),
    (VALID.replace("0.0001", "1e-4"), "YAML reads 1e-3 as text: write 1.0e-3"),
    (VALID.replace("log_uniform_values", "beta"), "distribution 'beta' is not supported here"),
    (VALID.replace("val/accuracy", "accuracy"), "metric: name: must be one of val/accuracy, val/loss"),
    (VALID + "output_dir: runs\n", "output_dir: unknown key"),
    (VALID.replace("parameters:", "parameters:\n  run_name: {value: x}"),
     "run_name: is set by the sweep for each trial"),
    (VALID.replace("run_cap: 3\n", ""), "--trials: a random sweep needs a number of trials"),
    (VALID.replace("method: random", "method: grid"), "lr: a grid sweep needs values (or value)"),
    ("method: [grid\n", "line 2: not valid YAML"),
])
def test_a_bad_sweep_file_is_one_line_and_exit_2(tmp_path, capsys, text, expected):
    assert main(["sweep", write(tmp_path, text), "--output-dir", str(tmp_path / "runs")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and expected in err, err
    assert not (tmp_path / "runs").exists()


def test_sweep_usage_errors_answer_without_torch_or_optuna(tmp_path):
    code = ("import sys\nfrom ignite_mnist.cli import main\n"
            f"code = main(['sweep', {write(tmp_path, VALID.replace('run_cap: 3', 'run_cap: 0'))!r}])\n"
            "print(code, 'torch' in sys.modules, 'optuna' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert result.stdout.split() == ["2", "False", "False"], result.stderr
    assert result.stderr.count("\n") == 1 and "run_cap: must be a positive integer" in result.stderr


def test_the_sweep_and_compare_modules_load_without_torch():
    pytest.importorskip("optuna")
    code = ("import sys, ignite_mnist.experiments.sweep, ignite_mnist.experiments.compare\n"
            "print('torch' in sys.modules, 'ignite' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert result.stdout.split() == ["False", "False"], result.stderr


@pytest.mark.parametrize(("storage", "code", "expected"), [
    ("not a url", 2, "--storage: 'not a url' is not a database URL"),
    ("sqlite:////nonexistent-folder/study.db", 1, "cannot open the study's database"),
    ("postgresql://user:secret@localhost:1/db", 1, "postgresql://user:***@localhost:1/db"),
])
def test_a_bad_storage_is_one_line(tmp_path, capsys, storage, code, expected):
    pytest.importorskip("optuna")
    assert main(["sweep", write(tmp_path, VALID), "--output-dir", str(tmp_path), "--storage", storage]) == code
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and expected in err and "secret" not in err, err


def test_another_sweep_file_for_the_same_sweep_is_refused(tmp_path):
    optuna = pytest.importorskip("optuna")
    from ignite_mnist.experiments.sweep import open_sweep

    _folder, study = open_sweep(SweepSpec.load(write(tmp_path, VALID)), tmp_path / "runs")
    assert study.user_attrs["sweep_file"]["run_cap"] == 3 and isinstance(study, optuna.Study)
    changed = SweepSpec.load(write(tmp_path, VALID.replace("run_cap: 3", "run_cap: 4")))
    with pytest.raises(ConfigError, match="holds a sweep started from another file"):
        open_sweep(changed, tmp_path / "runs")
    storage = f"sqlite:///{tmp_path / 'shared.db'}"  # two machines, each its own folder, one study
    open_sweep(SweepSpec.load(write(tmp_path, VALID)), tmp_path / "a", storage=storage)
    with pytest.raises(ConfigError, match="study sweep was started from another sweep file"):
        open_sweep(changed, tmp_path / "b", storage=storage)


def test_distributions_are_those_of_wandbs_own_optuna_scheduler():
    pytest.importorskip("optuna")
    wandb_optuna = pytest.importorskip("wandb.sdk.sweeps.scheduler.optuna")
    from ignite_mnist.experiments.sweep import distributions

    parameters = {
        "model": {"values": ["mlp", "cnn"]}, "epochs": {"value": 1}, "seed": {"min": 0, "max": 9},
        "lr": {"min": 0.0001, "max": 0.1, "distribution": "log_uniform_values"},
        "momentum": {"min": 0.0, "max": 0.9},
        "batch_size": {"min": 32, "max": 512, "distribution": "q_uniform", "q": 32},
        "weight_decay": {"min": 0.0, "max": 0.1, "distribution": "q_uniform", "q": 0.01},
        "val_size": {"min": 1000, "max": 10000, "distribution": "q_log_uniform_values"},
        "keep_best": {"values": [1, 2, 3], "distribution": "categorical"},
    }
    parameters["optimizer"] = {"value": "sgd"}  # momentum is for sgd only (each value is checked by the parser)
    spec = SweepSpec.from_dict({"method": "bayes", "metric": {"name": "val/loss"}, "run_cap": 2,
                                "parameters": parameters}, "demo.yaml")
    assert distributions(spec) == wandb_optuna.search_space_from_sweep_config(parameters)


def test_the_agents_argument_formats_all_train_the_same_config():
    wandb_sweeps = pytest.importorskip("wandb.sdk.launch.sweeps.utils")
    params = {"lr": 1e-05, "batch_size": 128, "amp": True, "plots": False, "patience": None, "model": "cnn",
              "wandb_tags": "a,b"}
    formats = wandb_sweeps.create_sweep_command_args({"args": {k: {"value": v} for k, v in params.items()}})
    assert formats["args"] == agent_args(params)  # what the sweep runs locally is what the agent builds
    ours = parse_train_args(["--lr", "1e-05", "--batch-size", "128", "--amp", "--no-plots", "--model", "cnn",
                             "--wandb-tags", "a,b"])
    assert parse_train_args(formats["args"]) == ours
    # ${args_no_boolean_flags} leaves out the false ones: the setting keeps its default (plots: True)
    assert parse_train_args(formats["args_no_boolean_flags"]) == dataclasses.replace(ours, plots=True)
    # ${args_no_equals}: "--amp True" is no syntax of argparse's boolean flags, which are given the usual way
    args = [a for k in ("lr", "batch_size", "model", "wandb_tags") for a in (f"--{k}", str(params[k]))]
    assert parse_train_args([*args, "--amp", "--no-plots"]) == ours


@pytest.mark.parametrize("names", [registry.SWEEP_METHODS, registry.PRUNERS, registry.SWEEP_DISTRIBUTIONS])
def test_every_sweep_name_resolves(names):
    pytest.importorskip("optuna")
    assert all(callable(names.load(name)) for name in names)


def test_budget():
    spec = SweepSpec.load(REPO / "examples" / "sweep.yaml")
    grid = SweepSpec.from_dict({"method": "grid", "metric": {"name": "val/loss"},
                                "parameters": {"lr": {"values": [0.1, 0.2]}, "seed": {"values": [0, 1, 2]}}}, "g")
    assert grid.budget(None) == 6 and grid.budget(4) == 4 and grid.budget(10) == 6
    assert spec.budget(None) == spec.run_cap and spec.budget(2) == 2


@pytest.mark.parametrize(("flags", "expected"), [
    (["--heartbeat", "5", "--grace-period", "5"], "--grace-period: must be longer than --heartbeat (5 s), got 5 s"),
    (["--heartbeat", "-1"], "argument --heartbeat: must be >= 0, got -1"),
])
def test_heartbeat_settings_out_of_range_are_usage_errors(tmp_path, capsys, flags, expected):
    pytest.importorskip("optuna")
    try:
        code = main(["sweep", write(tmp_path, VALID), "--output-dir", str(tmp_path), *flags])
    except SystemExit as exit_:  # argparse
        code = exit_.code
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and expected in err, err
    assert not (tmp_path / "sweep").exists()  # refused before the sweep's folder or study was made


def test_a_retried_trial_counts_once_through_its_retry(tmp_path):
    optuna = pytest.importorskip("optuna")
    from ignite_mnist.experiments.sweep_storage import counted_trials

    study = optuna.create_study()
    study.add_trial(optuna.create_trial(state=optuna.trial.TrialState.FAIL))
    study.add_trial(optuna.create_trial(state=optuna.trial.TrialState.WAITING, system_attrs={"failed_trial": 0}))
    study.add_trial(optuna.create_trial(value=1.0))
    assert counted_trials(study) == 2


@pytest.mark.parametrize(("name", "monitor", "best"), [
    ("val/accuracy", "val_accuracy", False), ("val_accuracy", "val_accuracy", False),
    ("val_loss", "val_loss", False), ("best_val_loss", "val_loss", True),
])
def test_a_sweep_metric_may_be_spelled_as_wandb_logs_it_or_as_metrics_jsonl_does(tmp_path, name, monitor, best):
    spec = SweepSpec.load(write(tmp_path, VALID.replace("val/accuracy", name)))
    assert (spec.monitor, spec.uses_best) == (monitor, best)
