"""``--config FILE`` (YAML, TOML, JSON) and ``--print-config``: real files, real runs, one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from ignite_mnist import run
from ignite_mnist.cli import main, parse_train_args
from ignite_mnist.storage.checkpoints import find_latest_checkpoint, load_checkpoint
from tests.conftest import assert_same_weights, run_cli


def test_a_runs_config_json_repeats_it_bit_for_bit(idx_root, tmp_path):
    first = run(parse_train_args(["--data-dir", str(idx_root), "--val-size", "200", "--epochs", "1", "--model", "cnn",
                                  "--augment", "--seed", "3", "--output-dir", str(tmp_path), "--run-name", "a",
                                  "--progress", "none", "--tracker", "none", "--no-plots"]))
    config_json = Path(first.run_dir) / "config.json"
    again = run(parse_train_args(["--config", str(config_json), "--run-name", "b"]))  # the flag beside it wins
    weights = [load_checkpoint(find_latest_checkpoint(Path(s.run_dir) / "checkpoints"))["model"]
               for s in (first, again)]
    assert_same_weights(*weights)
    assert again.test_accuracy == first.test_accuracy
    a, b = (json.loads((Path(s.run_dir) / "config.json").read_text()) for s in (first, again))
    assert a | {"run_name": "b"} == b
    # --tracker none: no tracker's files, no tracker's entry in the checkpoint
    assert sorted(p.name for p in Path(first.run_dir).iterdir()) == [".lock", "checkpoints", "config.json",
                                                                      "metrics.jsonl", "summary.json"]
    assert not {"wandb", "tensorboard", "mlflow"} & set(load_checkpoint(find_latest_checkpoint(
        Path(first.run_dir) / "checkpoints")))


def test_print_config_prints_what_config_reads(tmp_path, capsys):
    flags = ["--recipe", "fast", "--epochs", "5", "--tracker", "tensorboard", "--tracker", "mlflow", "--patience", "2"]
    assert main([*flags, "--print-config"]) == 0
    printed = capsys.readouterr().out
    expected = parse_train_args(flags)
    assert yaml.safe_load(printed) == expected.to_dict()
    (tmp_path / "run.yaml").write_text(printed)
    assert parse_train_args(["--config", str(tmp_path / "run.yaml")]) == expected
    (tmp_path / "run.json").write_text(json.dumps(expected.to_dict()))
    assert parse_train_args(["--config", str(tmp_path / "run.json")]) == expected


def test_toml_and_the_order_defaults_recipe_file_flags(tmp_path):
    (tmp_path / "run.toml").write_text('model = "cnn"\nepochs = 4\nlr = 0.01\ntracker = ["tensorboard"]\n')
    config = parse_train_args(["--recipe", "fast", "--config", str(tmp_path / "run.toml"), "--epochs", "2"])
    assert (config.model, config.lr, config.epochs, config.tracker) == ("cnn", 0.01, 2, ["tensorboard"])
    assert (config.optimizer, config.batch_size) == ("adamw", 128)  # from the recipe, under the file
    assert config.seed == 0  # the default, under all of them
    (tmp_path / "bad.yaml").write_text("epochs: 0\n")  # out of range in the file, but the flag wins
    assert parse_train_args(["--config", str(tmp_path / "bad.yaml"), "--epochs", "1"]).epochs == 1


def test_an_older_config_json_with_a_renamed_setting_still_reads(tmp_path):
    from ignite_mnist.settings.config import TrainConfig

    old = TrainConfig().to_dict() | {"epochs": 2}
    old["wandb_log_every"] = old.pop("log_every") // 5  # before --log-every served every tracker
    (tmp_path / "config.json").write_text(json.dumps(old))
    assert parse_train_args(["--config", str(tmp_path / "config.json")]).log_every == 10
    assert TrainConfig.from_dict(old).log_every == 10  # what evaluate, predict and export read from a checkpoint


#: A run's config.json as it was written while TrainConfig held the trackers' settings itself (``wandb_*``,
#: ``mlflow_*`` beside the others). The trackers now declare them (tracking/*_settings.py); the file's keys stay.
FLAT_TRACKER_KEYS = Path(__file__).parent / "data" / "config_with_flat_tracker_keys.json"


def test_a_config_json_from_before_the_trackers_declared_their_settings_loads_trains_and_resumes(idx_root, tmp_path):
    old = json.loads(FLAT_TRACKER_KEYS.read_text())
    config = parse_train_args(["--config", str(FLAT_TRACKER_KEYS)])
    assert config.to_dict() == old and list(config.to_dict()) == list(old)  # the same keys, in the same order
    assert (config.settings_of("wandb").wandb_project, config.settings_of("wandb").wandb_watch,
            config.settings_of("mlflow").mlflow_experiment) == ("proj", "gradients", "exp")
    here = {"data_dir": str(idx_root), "output_dir": str(tmp_path)}
    path = tmp_path / "old.json"
    path.write_text(json.dumps(old | here))
    first = run(parse_train_args(["--config", str(path)]))
    written = json.loads((Path(first.run_dir) / "config.json").read_text())
    assert written == old | here | {"threads": written["threads"]}  # threads: the count --threads auto chose
    resumed = run(parse_train_args(["--resume", "auto", "--output-dir", str(tmp_path), "--run-name", "old",
                                    "--epochs", "2"]))
    assert resumed.epochs_completed == 2 and resumed.run_dir == first.run_dir
    after = json.loads((Path(first.run_dir) / "config.json").read_text())
    # every tracker setting kept from the file, but the MLflow server: a checkpoint names no place a run writes to
    assert after == written | {"epochs": 2, "resume": after["resume"], "mlflow_uri": None}
    assert load_checkpoint(find_latest_checkpoint(Path(first.run_dir) / "checkpoints"))["config"]["wandb_tags"] == "a,b"


def test_a_thread_count_may_be_written_as_a_number(tmp_path):
    for name, text in (("t.yaml", "threads: 2\n"), ("t.toml", "threads = 2\n"), ("t.json", '{"threads": 2}')):
        (tmp_path / name).write_text(text)
        assert parse_train_args(["--config", str(tmp_path / name)]).threads == "2"


@pytest.mark.parametrize(
    ("name", "text", "expected"),
    [
        ("run.yaml", "model: cnn\nepoch: 3\n", "run.yaml:2: epoch: unknown setting (did you mean epochs?)"),
        ("run.yaml", "model: cnn\nlr: fast\n", "run.yaml:2: lr: expected a number, got 'fast'"),
        ("run.yaml", "epochs: 0\n", "run.yaml:1: epochs: must be > 0, got 0"),
        ("run.yaml", "threads: 0\n", "run.yaml:1: threads: invalid choice '0' (choose from auto or a thread count"),
        ("run.yaml", "model: cnn\noptimizer: adam\nmomentum: 0.9\n", "run.yaml:3: momentum: only --optimizer sgd"),
        ("run.yaml", "tracker: [wandb, neptune]\n", "run.yaml:1: tracker: invalid choice 'neptune'"),
        ("run.yaml", "model: [cnn\n", "run.yaml:2: not valid YAML"),
        ("run.yaml", "- cnn\n", "run.yaml: expected settings by name (a mapping), got a list"),
        ("run.toml", 'model = "cnn"\n\nepochs = "3"\n', "run.toml:3: epochs: expected an integer, got '3'"),
        ("run.toml", "model = cnn\n", "run.toml: not valid TOML (Invalid value (at line 1, column 9))"),
        ("run.json", '{\n  "model": "cnn",\n  "amp": "yes"\n}', "run.json:3: amp: expected true or false, got 'yes'"),
        ("run.json", '{\n  "model": "cnn",\n}', "run.json:3: not valid JSON"),
        ("run.ini", "[train]\n", "--config: run.ini: unknown file type; use .yaml, .yml, .toml or .json"),
    ],
)
def test_bad_config_files_are_one_line_and_exit_2(tmp_path, name, text, expected):
    (tmp_path / name).write_text(text)
    result = run_cli("--config", name, cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert f"ignite-mnist: error: {expected}" in result.stderr


def test_a_missing_config_file_is_one_line(tmp_path):
    result = run_cli("--config", str(tmp_path / "nope.yaml"))
    assert result.returncode == 2 and result.stderr.count("\n") == 1
    assert "--config: cannot read" in result.stderr and "nope.yaml (No such file or directory)" in result.stderr
