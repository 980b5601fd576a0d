import json
import re
import shutil
import subprocess
import sys

import pytest

from ignite_mnist.settings.config import flag_name, setting_fields
from tests.conftest import REPO, run_cli

QUIET = ("--progress", "none", "--wandb-mode", "disabled")


def test_help_lists_every_flag_with_its_default():
    result = run_cli("--help")
    assert result.returncode == 0
    text = " ".join(result.stdout.split())
    for name in setting_fields():  # the trackers' own settings too
        assert flag_name(name) in text
    assert "--epochs EPOCHS number of training epochs (default: 10)" in text
    assert "(default: 32)" in text and "(default: 0.001)" in text


@pytest.mark.parametrize(
    ("args", "flag"),
    [
        (("--model", "resnet"), "--model"),
        (("--dataset", "cifar10"), "--dataset"),
        (("--epochs", "0"), "--epochs"),
        (("--batch-size", "-4"), "--batch-size"),
        (("--lr", "0"), "--lr"),
        (("--epochs", "ten"), "--epochs"),
        (("--recipe", "slow"), "--recipe"),
    ],
)
def test_usage_errors_are_one_line_and_exit_2(args, flag):
    result = run_cli(*args)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert flag in result.stderr


def test_recipe_fast_fills_in_its_settings_and_given_flags_win(idx_root, tmp_path):
    result = run_cli("--recipe", "fast", "--epochs", "1", "--lr", "0.002", "--data-dir", str(idx_root),
                     "--val-size", "200", "--output-dir", str(tmp_path), "--run-name", "r", "--no-plots", *QUIET)
    assert result.returncode == 0, result.stderr
    config = json.loads((tmp_path / "r" / "config.json").read_text())
    assert {k: config[k] for k in ("model", "optimizer", "lr_schedule", "batch_size", "amp", "epochs", "lr")} == {
        "model": "fastcnn", "optimizer": "adamw", "lr_schedule": "onecycle", "batch_size": 128, "amp": True,
        "epochs": 1, "lr": 0.002}
    assert "recipe" not in config  # config.json holds the settings themselves


def test_val_size_not_smaller_than_the_training_set(idx_root, tmp_path):
    result = run_cli("--data-dir", str(idx_root), "--val-size", "1200", "--output-dir", str(tmp_path / "runs"), *QUIET)
    assert result.returncode == 2
    assert result.stderr.strip().endswith("(see --help)") and "--val-size" in result.stderr
    assert result.stderr.count("\n") == 1
    assert not (tmp_path / "runs").exists()  # nothing was created for a refused run


def test_unreadable_idx_file_is_one_line_exit_1(fresh_idx_root, tmp_path):
    labels = fresh_idx_root / "MNIST" / "raw" / "t10k-labels-idx1-ubyte"
    labels.write_bytes(labels.read_bytes()[:20])
    result = run_cli("--data-dir", str(fresh_idx_root), "--val-size", "200", "--output-dir", str(tmp_path / "runs"),
                     *QUIET)
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert "t10k-labels-idx1-ubyte: truncated IDX file" in result.stderr


def test_console_script_and_module_run_the_same_cli():
    script = shutil.which("ignite-mnist", path=str(REPO / ".venv" / "bin") + ":" + str(sys.prefix) + "/bin")
    assert script is not None
    assert subprocess.run([script, "--help"], capture_output=True, text=True).stdout == run_cli("--help").stdout


def test_fashion_mnist_choice_trains(tmp_path):
    from tests.conftest import make_idx_dataset

    root = make_idx_dataset(tmp_path / "data", n_train=600, n_test=100, folder="FashionMNIST")
    result = run_cli("--dataset", "fashion-mnist", "--data-dir", str(root), "--val-size", "100", "--epochs", "1",
                     "--output-dir", str(tmp_path / "runs"), "--run-name", "f", *QUIET)
    assert result.returncode == 0, result.stderr
    assert json.loads((tmp_path / "runs" / "f" / "config.json").read_text())["dataset"] == "fashion-mnist"


@pytest.mark.integration
def test_default_recipe_reaches_96_5_percent_in_10_epochs(mnist_root, tmp_path):
    """The tutorial's recipe, seed 0, one thread: 96.78 % with torch 2.14.1 here, with this round's code and with
    0.1.0's alike (0.1.0's CI, on another torch build, had it above 97 %), so the bound leaves room for both."""
    result = run_cli("--data-dir", str(mnist_root), "--output-dir", str(tmp_path), "--run-name", "ten", *QUIET)
    assert result.returncode == 0, result.stderr
    summary = json.loads((tmp_path / "ten" / "summary.json").read_text())
    assert summary["epochs_completed"] == 10
    assert summary["test_accuracy"] >= 0.965


def test_help_lists_the_commands_and_prints_each_default_once():
    from ignite_mnist.cli import COMMANDS

    text = " ".join(run_cli("--help").stdout.split())
    for name, command in COMMANDS.items():
        assert f"{name} {command.__doc__.splitlines()[0]}" in text
    assert "Each command's own flags: ignite-mnist COMMAND --help." in text
    assert "(default: $IGNITE_MNIST_DATA_DIR or ./data) --val-size" in text
    assert "(default: never) --min-delta" in text
    from ignite_mnist.cli.inference import SUBCOMMAND_PARSERS
    from ignite_mnist.cli.train import train_parser

    for name, build in {"train": train_parser, **SUBCOMMAND_PARSERS}.items():
        flags = re.split(r"\n  (?=-)", build().format_help())[1:]  # one block per flag
        assert len(flags) > 3 and [f for f in flags if f.count("(default:") > 1 or "(default: None)" in f] == [], name


def test_help_describes_every_model_and_export_format_it_lists():
    from ignite_mnist.cli import COMMANDS
    from ignite_mnist.registry import EXPORT_FORMATS, MODELS

    text = " ".join(run_cli("--help").stdout.split())
    model_help = text[text.index("network: "):text.index("--epochs EPOCHS number")]
    for name in MODELS.names:  # each named with what it is, not only listed in the choices
        assert f"{name}, " in model_help, name
    summary = COMMANDS["export"].__doc__.lower()
    for name in EXPORT_FORMATS.names:
        assert name in summary, name


def test_early_stopping_is_told_in_the_last_line_and_nothing_else_is_printed(idx_root, tmp_path):
    result = run_cli("--data-dir", str(idx_root), "--val-size", "200", "--epochs", "4", "--patience", "1",
                     "--min-delta", "1", "--output-dir", str(tmp_path), "--run-name", "r", "--no-plots",
                     "--progress", "none", "--tracker", "none")
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""  # no library log line (Ignite's EarlyStopping logs one of its own)
    (line,) = result.stdout.splitlines()
    assert ("; stopped early after epoch 2 of 4: val_accuracy did not improve for 1 epoch; run directory "
            f"{tmp_path / 'r'}") in line and line.startswith("test accuracy ")
