"""W&B tracking: real offline runs, read back with W&B's own reader (``wandb leet inspect``)."""

from __future__ import annotations

import json
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
from ignite.engine import Engine, Events

from ignite_mnist import TrainConfig, run
from ignite_mnist.cli import parse_train_args
from ignite_mnist.evaluation import MISCLASSIFIED_KEPT
from ignite_mnist.handlers import attach_wandb
from ignite_mnist.storage.checkpoints import checkpoint_iteration, find_latest_checkpoint, load_checkpoint
from ignite_mnist.storage.run_dir import read_metrics_log
from ignite_mnist.tracking.wandb import has_wandb_credentials, resolve_wandb_mode
from tests.conftest import REPO, run_cli

WANDB_CLI = shutil.which("wandb", path=str(Path(sys.executable).parent)) or "wandb"
WANDB_HOMES = ("WANDB_CACHE_DIR", "WANDB_CONFIG_DIR", "WANDB_DATA_DIR", "WANDB_ARTIFACT_DIR")


def inspect(path: Path, *options: str) -> Any:
    """Records of a run's ``.wandb`` file (or its summary) as parsed by ``wandb leet inspect --json``."""
    result = subprocess.run([WANDB_CLI, "leet", "inspect", "--json", *options, str(path)], capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    return json.loads(out) if "--summary" in options else [json.loads(line) for line in out.splitlines() if line]


def history(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r["history"]["item"] for r in records if r["type"] == "history"]


def offline_runs(wandb_dir: Path) -> list[Path]:
    return sorted(wandb_dir.glob("wandb/offline-run-*"))


def small_config(idx_root: Path, out: Path, **changes: Any) -> TrainConfig:
    values = {"data_dir": str(idx_root), "output_dir": str(out), "val_size": 200, "epochs": 2, "batch_size": 32,
              "progress": "none", "run_name": "r", "wandb_mode": "offline"}
    return TrainConfig.from_dict(values | changes)


@pytest.fixture(scope="module")
def tracked(idx_root: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One real offline-tracked training, shared by the read-back tests (W&B start-up is slow)."""
    home = tmp_path_factory.mktemp("wandb-home")
    with pytest.MonkeyPatch.context() as env:
        for name in WANDB_HOMES:
            env.setenv(name, str(home / name.lower()))
        env.delenv("WANDB_DIR", raising=False)  # the default: W&B files inside the run directory
        env.delenv("WANDB_API_KEY", raising=False)
        # a learning rate low enough that some test digits are still misclassified after two epochs
        config = small_config(idx_root, tmp_path_factory.mktemp("runs"), val_every_iterations=10, lr=1e-6,
                              log_every=5, wandb_watch="gradients", wandb_tags="smoke,ci")
        summary = run(config)
    (wandb_run,) = offline_runs(Path(summary.run_dir))
    return {"config": config, "summary": summary, "wandb_run": wandb_run, "home": home,
            "records": inspect(wandb_run), "wandb_summary": inspect(wandb_run, "--summary")}


def test_config_equals_config_json(tracked):
    on_disk = json.loads((Path(tracked["summary"].run_dir) / "config.json").read_text())
    logged = {k: v for k, v in tracked["wandb_summary"]["config"].items() if k != "_wandb"}
    assert logged == on_disk
    assert tracked["wandb_summary"]["project"] == "ignite-mnist"
    assert tracked["wandb_summary"]["name"] == "r" and tracked["wandb_summary"]["tags"] == ["smoke", "ci"]
    assert tracked["wandb_summary"]["state"] == "finished"


def test_history_is_on_the_trainer_iteration_axis(tracked):
    steps = [row["_step"] for row in history(tracked["records"])]
    assert steps == sorted(set(steps)), "W&B drops rows whose step goes backwards"
    last_iteration = 64  # 1000 training images / 32 = 32 iterations per epoch, 2 epochs
    loss_steps = [row["_step"] for row in history(tracked["records"]) if "train/loss" in row]
    assert loss_steps == list(range(5, last_iteration + 1, 5))
    assert all(row["lr/group_0"] == tracked["config"].lr for row in history(tracked["records"]) if "train/loss" in row)
    epochs = {row["_step"]: row["epoch/epoch"] for row in history(tracked["records"]) if "epoch/epoch" in row}
    assert epochs == {last_iteration // 2: 1, last_iteration: 2}
    assert any(key.startswith("gradients/") for row in history(tracked["records"]) for key in row)


def test_every_validation_has_its_row(tracked):
    validations = [row for row in read_metrics_log(Path(tracked["summary"].run_dir) / "metrics.jsonl")
                   if row.get("val_accuracy") is not None]
    logged = {row["_step"]: row["val/accuracy"] for row in history(tracked["records"]) if "val/accuracy" in row}
    assert len(validations) == 8  # every 10 iterations of 64, plus both epoch ends
    assert logged == pytest.approx({row["iteration"]: row["val_accuracy"] for row in validations})


def test_summary_holds_test_and_best_values(tracked):
    summary, logged = tracked["summary"], tracked["wandb_summary"]["summary"]
    assert logged["test_accuracy"] == pytest.approx(summary.test_accuracy)
    assert logged["test_loss"] == pytest.approx(summary.test_loss)
    assert logged["best_val_accuracy"] == pytest.approx(summary.best_val_accuracy)


def test_confusion_matrix_and_misclassified_digits(tracked):
    files = tracked["wandb_run"] / "files"
    logged = tracked["wandb_summary"]["summary"]
    matrix = json.loads((files / logged["test/confusion_matrix_table"]["path"]).read_text())
    counts = {(actual, predicted): n for actual, predicted, n in matrix["data"]}
    assert sum(counts.values()) == 300  # every test image once
    correct = sum(n for (actual, predicted), n in counts.items() if actual == predicted)
    assert correct / 300 == pytest.approx(tracked["summary"].test_accuracy)
    table = json.loads((files / logged["test/misclassified"]["path"]).read_text())
    assert table["columns"] == ["image", "label", "prediction", "confidence"]
    assert 0 < len(table["data"]) == min(MISCLASSIFIED_KEPT, 300 - correct)
    assert logged["status"] == "finished"  # no W&B error on the way (the table holds real images)
    assert all(label != prediction for _, label, prediction, _ in table["data"])


def test_best_checkpoint_is_the_model_artifact(tracked):
    artifacts = [r["artifact"] for r in tracked["records"] if r["type"] == "artifact"]
    (model,) = [a for a in artifacts if a["type"] == "model"]
    assert model["name"] == f"model-{tracked['wandb_summary']['run_id']}"
    assert set(model["aliases"]) == {"best", "latest"}
    (entry,) = model["manifest"]["contents"]
    assert entry["path"] == Path(tracked["summary"].best_checkpoint).name


def test_offline_run_keeps_its_model_inside_the_run_directory(tracked):
    # W&B stages artifact files (the model, tables, images) under $WANDB_DATA_DIR and logs under
    # $WANDB_CACHE_DIR: for an offline run both point into <run>/wandb/, so the run folder holds
    # everything `wandb sync` needs and nothing new appears in the W&B home folders
    assert [path for path in tracked["home"].rglob("*") if path.is_file()] == []
    summary = tracked["summary"]
    best = (Path(summary.run_dir) / summary.best_checkpoint).read_bytes()
    staged = [path for path in (Path(summary.run_dir) / "wandb" / "data").rglob("*") if path.is_file()]
    (model_copy,) = [path for path in staged if path.read_bytes() == best]  # beside the tables and images
    artifacts = [r["artifact"] for r in tracked["records"] if r["type"] == "artifact"]
    (model,) = [a for a in artifacts if a["type"] == "model"]
    (entry,) = model["manifest"]["contents"]
    assert Path(entry["local_path"]) == model_copy  # what `wandb sync` uploads


def test_run_id_is_checkpointed(tracked):
    summary = tracked["summary"]
    checkpoint = load_checkpoint(Path(summary.run_dir) / summary.best_checkpoint)
    assert checkpoint["wandb"]["run_id"] == tracked["wandb_summary"]["run_id"]
    assert checkpoint["record"]["best"]["val_accuracy"] <= summary.best_val_accuracy


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A port where a server accepts connections and never answers (a W&B host behind a broken proxy)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(64)
    held: list[socket.socket] = []
    thread = threading.Thread(target=lambda: [held.append(server.accept()[0]) for _ in iter(int, 1)], daemon=True)
    thread.start()
    yield server.getsockname()[1]
    server.close()


@pytest.mark.slow  # waits out W&B's connection attempts to an unreachable server
@pytest.mark.parametrize("server", ["refusing", "silent"])
def test_unreachable_server_falls_back_to_offline(idx_root, tmp_path, isolated_wandb, monkeypatch, request, server):
    if server == "silent":
        port = request.getfixturevalue("silent_server")
    else:
        with socket.socket() as probe:  # a port nothing listens on
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
    monkeypatch.delenv("WANDB_SILENT")  # show that W&B's own banner, login and sync lines give way to our one line
    env = {"WANDB_BASE_URL": f"http://127.0.0.1:{port}", "WANDB_API_KEY": "0" * 40}
    result = run_cli("--data-dir", str(idx_root), "--output-dir", str(tmp_path), "--run-name", "r", "--epochs", "1",
                     "--val-size", "200", "--progress", "none", "--wandb-mode", "online", env=env)
    assert result.returncode == 0, result.stderr
    lines = result.stderr.splitlines()
    (warning,) = [line for line in lines if "warning" in line.lower()]
    assert "offline" in warning and [line for line in lines if "wandb sync" in line] == [warning]
    assert not [line for line in lines if line.startswith("wandb:")]  # no login line, no banner
    # The attempt is cut at ONLINE_INIT_TIMEOUT (10 s); W&B alone retries for 90 s. Loose bound: a loaded machine.
    waited = float(re.search(r"failed after (\d+) s", warning).group(1))
    assert waited < 60
    (wandb_run,) = offline_runs(isolated_wandb / "wandb_dir")
    logged = inspect(wandb_run, "--summary")
    assert logged["state"] == "finished"
    summary = json.loads((tmp_path / "r" / "summary.json").read_text())
    assert logged["summary"]["test_accuracy"] == pytest.approx(summary["test_accuracy"])


@pytest.mark.slow  # trained, killed and resumed in subprocesses
def test_killed_and_resumed_training_is_one_wandb_run(idx_root, tmp_path, isolated_wandb):
    args = ["--data-dir", str(idx_root), "--output-dir", str(tmp_path), "--run-name", "r", "--val-size", "200",
            "--progress", "none", "--wandb-mode", "offline", "--epochs", "5", "--checkpoint-every", "10"]
    checkpoints = tmp_path / "r" / "checkpoints"
    process = subprocess.Popen([sys.executable, "-m", "ignite_mnist", *args], cwd=REPO,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while not list(checkpoints.glob("last_*.pt")) and process.poll() is None:
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)  # no chance to finish the W&B run or save anything more
    assert process.wait(timeout=60) == -signal.SIGKILL, "training ended before it could be killed"

    run(parse_train_args([*args, "--resume", "auto"]))
    first, second = offline_runs(isolated_wandb / "wandb_dir")
    # W&B names each run's file run-<id>.wandb; the killed run's records may be lost with its W&B process.
    (killed_id,) = [path.stem.removeprefix("run-") for path in first.glob("run-*.wandb")]
    assert inspect(second, "--summary")["run_id"] == killed_id
    assert load_checkpoint(find_latest_checkpoint(tmp_path / "r" / "checkpoints"))["wandb"]["run_id"] == killed_id
    start = checkpoint_iteration(json.loads((tmp_path / "r" / "summary.json").read_text())["resumed_from"])
    assert start is not None
    assert min(row["_step"] for row in history(inspect(second))) > start
    assert inspect(second, "--summary")["summary"]["test_accuracy"] > 0


def test_a_wandb_error_is_reported_once_and_training_goes_on(isolated_wandb, capsys, tmp_path):
    # A plain hand-written Engine; the W&B error is real: the run is finished under the logger's feet.
    import wandb

    trainer = Engine(lambda engine, batch: torch.tensor(float(batch)))
    # started in the foreground: the run exists when the test finishes it (a background start is tested apart)
    tracker = attach_wandb(trainer, tmp_path, mode="offline", log_every=1, background=False)
    assert len(tracker.handles) == 3 and tracker.mode == "offline"  # loss, epoch, best values after validation
    trainer.add_event_handler(Events.ITERATION_COMPLETED(once=3), lambda _: wandb.finish())
    state = trainer.run(range(10), max_epochs=2)
    assert state.iteration == 20 and tracker.failed
    warnings = [line for line in capsys.readouterr().err.splitlines() if "warning" in line]
    assert len(warnings) == 1 and "W&B logging failed" in warnings[0]
    steps = [row["_step"] for row in history(inspect(tracker.run_dir))]
    assert steps == [1, 2, 3]  # the rows logged before the run was finished


def test_disabled_costs_nothing(idx_root, tmp_path, isolated_wandb):
    out = tmp_path / "runs"
    code = (
        "import sys; from ignite_mnist import TrainConfig, run\n"
        "assert 'wandb' not in sys.modules, 'imported by the package'\n"
        f"run(TrainConfig.from_dict(dict(data_dir={str(idx_root)!r}, output_dir={str(out)!r}, run_name='r', "
        "epochs=1, val_size=200, progress='none', wandb_mode='disabled')))\n"
        "print('wandb' in sys.modules)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600, cwd=REPO)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False" and result.stderr == ""
    assert not list(out.rglob("*wandb*")) and not list(isolated_wandb.rglob("*.wandb"))
    assert load_checkpoint(find_latest_checkpoint(out / "r" / "checkpoints"))["wandb"]["run_id"] is None


@pytest.mark.parametrize(
    ("env", "expected"),
    [({}, "offline"), ({"WANDB_API_KEY": "k" * 40}, "online"), ({"WANDB_MODE": "disabled"}, "disabled"),
     ({"WANDB_MODE": "dryrun", "WANDB_API_KEY": "k" * 40}, "offline"), ({"WANDB_DISABLED": "true"}, "disabled")],
)
def test_auto_mode(env, expected, monkeypatch, tmp_path):
    monkeypatch.setenv("NETRC", str(tmp_path / "no-netrc"))
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert resolve_wandb_mode("auto") == expected
    assert resolve_wandb_mode("offline") == "offline"


def test_netrc_login_counts_as_credentials(tmp_path, monkeypatch):
    netrc = tmp_path / "netrc"
    monkeypatch.setenv("NETRC", str(netrc))
    monkeypatch.setenv("WANDB_BASE_URL", "https://wandb.example.org")
    netrc.write_text("machine api.wandb.ai login user password " + "k" * 40 + "\n")
    assert not has_wandb_credentials()  # a login for another host
    netrc.write_text("machine wandb.example.org login user password " + "k" * 40 + "\n")
    assert has_wandb_credentials() and resolve_wandb_mode("auto") == "online"


def test_bad_arguments():
    trainer = Engine(lambda engine, batch: 0.0)
    with pytest.raises(ValueError, match="log_every must be > 0"):
        attach_wandb(trainer, ".", mode="disabled", log_every=0)
    with pytest.raises(ValueError, match="watch must be one of"):
        attach_wandb(trainer, ".", mode="disabled", watch="weights")
    with pytest.raises(ValueError, match="W&B mode must be one of"):
        attach_wandb(trainer, ".", mode="cloud")


def test_a_run_started_in_the_background_keeps_the_rows_logged_before_it_existed(idx_root, tmp_path, isolated_wandb,
                                                                              monkeypatch):
    # The managed run opens W&B in a thread while training goes on. W&B's start is held back here (a real
    # start, three seconds late), so every training row below is logged before the run exists.
    import ignite_mnist.tracking.wandb as tracking

    real_start = tracking._start_run

    def late_start(*args: Any) -> Any:
        time.sleep(3)
        return real_start(*args)

    monkeypatch.setattr(tracking, "_start_run", late_start)
    config = small_config(idx_root, tmp_path, epochs=1, log_every=1, checkpoint_every=None)
    summary = run(config)
    (wandb_run,) = offline_runs(isolated_wandb / "wandb_dir")
    rows = history(inspect(wandb_run))
    assert [row["_step"] for row in rows if "train/loss" in row] == list(range(1, 32 + 1))  # none lost, in order
    assert inspect(wandb_run, "--summary")["summary"]["test_accuracy"] == pytest.approx(summary.test_accuracy)
    assert load_checkpoint(find_latest_checkpoint(Path(summary.run_dir) / "checkpoints"))["wandb"]["run_id"] \
        == wandb_run.name.rsplit("-", 1)[-1]


def test_an_offline_run_starts_when_training_ends_and_gets_every_row(idx_root, tmp_path, monkeypatch):
    # The managed run holds W&B's rows in memory while it trains and starts W&B after the last training step (here
    # no checkpoint comes before: one epoch, validated at its end): no W&B run exists when any step starts (its
    # folder would be in the run directory) nor is being started (in the tracker's "wandb-start" thread), and
    # afterwards it has every row.
    monkeypatch.delenv("WANDB_DIR")  # W&B's files inside the run directory, where the hook below looks
    seen: list[list[Any]] = []

    def watch_for_wandb(parts: Any) -> None:
        parts.trainer.add_event_handler(Events.ITERATION_STARTED, lambda _: seen.append(
            list(parts.run_dir.path.glob("wandb/offline-run-*"))
            + [thread.name for thread in threading.enumerate() if thread.name == "wandb-start"]))

    config = small_config(idx_root, tmp_path, epochs=1, log_every=1)
    summary = run(config, attach=watch_for_wandb)
    assert seen == [[]] * 32  # 1000 training images in batches of 32
    (wandb_run,) = offline_runs(Path(summary.run_dir))
    rows, logged = history(inspect(wandb_run)), inspect(wandb_run, "--summary")
    assert [row["_step"] for row in rows if "train/loss" in row] == list(range(1, 33))
    metrics = read_metrics_log(Path(summary.run_dir) / "metrics.jsonl")
    validations = {row["iteration"]: row["val_accuracy"] for row in metrics if row.get("val_accuracy") is not None}
    assert list(validations) == [32]
    assert {row["_step"]: row["val/accuracy"] for row in rows if "val/accuracy" in row} == pytest.approx(validations)
    (epoch,) = [row for row in metrics if row["kind"] == "epoch"]
    assert [(row["_step"], row["epoch/train_loss"]) for row in rows if "epoch/train_loss" in row] == [
        (32, pytest.approx(epoch["train_loss"]))]
    assert logged["summary"]["best_val_accuracy"] == pytest.approx(summary.best_val_accuracy)
    assert logged["summary"]["test_accuracy"] == pytest.approx(summary.test_accuracy)
    assert logged["state"] == "finished" and logged["summary"]["status"] == "finished"
    checkpoint = load_checkpoint(Path(summary.run_dir) / summary.best_checkpoint)
    assert checkpoint["wandb"]["run_id"] == logged["run_id"]  # chosen before W&B started


INTERRUPTED_RUN = """
import json, os, signal, sys
from ignite.engine import Events
from ignite_mnist import TrainConfig, run
from ignite_mnist.errors import Interrupted

def interrupt(parts):
    parts.trainer.add_event_handler(Events.ITERATION_COMPLETED(once=20), lambda _: os.kill(os.getpid(), signal.SIGINT))

try:
    run(TrainConfig.from_dict(json.loads(sys.argv[1])), attach=interrupt)
except Interrupted as error:
    print(error, file=sys.stderr)
    sys.exit(error.exit_code)
"""


def test_an_interrupted_run_hands_every_row_to_wandb_before_it_closes(idx_root, tmp_path, isolated_wandb):
    config = small_config(idx_root, tmp_path, epochs=3, log_every=1)
    result = subprocess.run([sys.executable, "-c", INTERRUPTED_RUN, json.dumps(config.to_dict())], cwd=REPO,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 130, result.stderr
    saved = find_latest_checkpoint(tmp_path / "r" / "checkpoints")
    stopped = checkpoint_iteration(saved)  # where the signal was acted on
    assert stopped >= 20 and str(saved) in result.stderr
    (wandb_run,) = offline_runs(isolated_wandb / "wandb_dir")
    rows, logged = history(inspect(wandb_run)), inspect(wandb_run, "--summary")
    assert [row["_step"] for row in rows if "train/loss" in row] == list(range(1, stopped + 1))
    assert logged["summary"]["status"] == "interrupted"
    assert load_checkpoint(saved)["wandb"]["run_id"] == logged["run_id"]
