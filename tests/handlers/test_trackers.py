"""TensorBoard and MLflow tracking: real runs read back with TensorBoard's event reader and ``MlflowClient``."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest
from ignite.engine import Engine, Events

from ignite_mnist import TrainConfig, run
from ignite_mnist.cli import parse_train_args
from ignite_mnist.storage.checkpoints import find_latest_checkpoint, load_checkpoint
from ignite_mnist.storage.run_dir import RunDir, read_metrics_log
from ignite_mnist.tracking.mlflow import MlflowTracker
from ignite_mnist.tracking.mlflow_settings import MlflowSettings
from ignite_mnist.tracking.tensorboard_settings import TensorboardSettings

pytest.importorskip("tensorboard", reason="the tensorboard extra is not installed (pip install -e '.[tensorboard]')")
pytest.importorskip("mlflow", reason="the mlflow extra is not installed (pip install -e '.[mlflow]')")

from mlflow.tracking import MlflowClient
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.plugins.hparams import plugin_data_pb2

LOG_EVERY = 5
LAST_ITERATION = 64  # 1000 training images / 32 = 32 iterations per epoch, 2 epochs


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def small_config(idx_root: Path, out: Path, **changes: Any) -> TrainConfig:
    values = {"data_dir": str(idx_root), "output_dir": str(out), "val_size": 200, "epochs": 2, "batch_size": 32,
              "progress": "none", "run_name": "r", "tracker": ["tensorboard", "mlflow"], "log_every": LOG_EVERY,
              "val_every_iterations": 10, "plots": False}
    return TrainConfig.from_dict(values | changes)


def scalars(log_dir: Path) -> EventAccumulator:
    return EventAccumulator(str(log_dir), size_guidance={"scalars": 0, "images": 0}).Reload()


def tb_series(events: EventAccumulator, tag: str) -> dict[int, float]:
    series = [(e.step, e.value) for e in events.Scalars(tag)]
    assert len({step for step, _ in series}) == len(series), f"{tag}: a step logged twice"
    return dict(series)


def mlflow_series(client: MlflowClient, run_id: str, key: str) -> dict[int, float]:
    """Each step's value; a step logged twice (by an interrupted part and its resume) must hold one value."""
    values: dict[int, list[float]] = defaultdict(list)
    for metric in client.get_metric_history(run_id, key):
        values[metric.step].append(metric.value)
    for step, logged in values.items():
        assert logged == pytest.approx([logged[0]] * len(logged)), f"{key} at {step}: {logged}"
    return {step: logged[0] for step, logged in values.items()}


def expected(run_dir: Path) -> dict[str, dict[int, float]]:
    """The metrics.jsonl rows as series by the trainer iteration."""
    rows = read_metrics_log(run_dir / "metrics.jsonl")
    validations = [row for row in rows if row.get("val_accuracy") is not None]
    return {
        "val_accuracy": {row["iteration"]: row["val_accuracy"] for row in validations},
        "val_loss": {row["iteration"]: row["val_loss"] for row in validations},
        "train_loss": {row["iteration"]: row["train_loss"] for row in rows if row["kind"] == "epoch"},
    }


@pytest.fixture(scope="module")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """A real MLflow tracking server (SQLite store, proxied artifacts) on a free local port."""
    folder = tmp_path_factory.mktemp("mlflow-server")
    url = f"http://127.0.0.1:{free_port()}"
    command = [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", url.rsplit(":", 1)[1],
               "--backend-store-uri", f"sqlite:///{folder}/server.db", "--artifacts-destination",
               str(folder / "artifacts"), "--workers", "1"]
    log = open(folder / "server.log", "wb")  # noqa: SIM115 - the server writes to it until the fixture stops it
    server = subprocess.Popen(command, cwd=folder, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + 300  # its start is slow on a loaded machine
    while True:
        try:
            urllib.request.urlopen(f"{url}/health", timeout=2)
            break
        except OSError:
            assert server.poll() is None and time.monotonic() < deadline, (folder / "server.log").read_text()[-2000:]
            time.sleep(0.2)
    yield url
    os.killpg(server.pid, signal.SIGTERM)  # the server and the workers it started
    server.wait(timeout=60)
    log.close()


@pytest.fixture(scope="module")
def tracked(idx_root: Path, mlflow_server: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One training tracked by TensorBoard (in the run directory) and by the MLflow server."""
    config = small_config(idx_root, tmp_path_factory.mktemp("runs"), mlflow_uri=mlflow_server)
    summary = run(config)
    client = MlflowClient(mlflow_server)
    (mlflow_run,) = client.search_runs([client.get_experiment_by_name("ignite-mnist").experiment_id])
    run_dir = Path(summary.run_dir)
    return {"config": config, "summary": summary, "run_dir": run_dir, "expected": expected(run_dir),
            "events": scalars(TensorboardSettings.log_dir(Path(run_dir))), "client": client, "mlflow_run": mlflow_run}


def test_tensorboard_scalars_equal_the_metrics_log(tracked):
    events, wanted = tracked["events"], tracked["expected"]
    assert len(wanted["val_accuracy"]) == 8  # every 10 iterations of 64, plus both epoch ends
    assert tb_series(events, "val/accuracy") == pytest.approx(wanted["val_accuracy"])
    assert tb_series(events, "val/loss") == pytest.approx(wanted["val_loss"])
    assert tb_series(events, "epoch/train_loss") == pytest.approx(wanted["train_loss"])
    assert "epoch/epoch" not in events.Tags()["scalars"]  # the step is the iteration; no chart of epoch numbers
    assert list(tb_series(events, "train/loss")) == list(range(LOG_EVERY, LAST_ITERATION + 1, LOG_EVERY))
    assert list(tb_series(events, "lr/group_0").values()) == [pytest.approx(1e-3)] * (LAST_ITERATION // LOG_EVERY)


def test_tensorboard_holds_the_test_report_and_the_config(tracked):
    events, summary = tracked["events"], tracked["summary"]
    assert tb_series(events, "test/accuracy") == {LAST_ITERATION: pytest.approx(summary.test_accuracy)}
    assert tb_series(events, "test/loss") == {LAST_ITERATION: pytest.approx(summary.test_loss)}
    assert [image.step for image in events.Images("test/confusion_matrix")] == [LAST_ITERATION]
    (content,) = [c for tag, c in events.PluginTagToContent("hparams").items() if tag.endswith("session_start_info")]
    logged = plugin_data_pb2.HParamsPluginData.FromString(content).session_start_info.hparams
    on_disk = json.loads((tracked["run_dir"] / "config.json").read_text())
    assert set(logged) == set(on_disk)
    assert logged["lr"].number_value == on_disk["lr"] and logged["model"].string_value == on_disk["model"]
    assert logged["tracker"].string_value == "tensorboard,mlflow"


def test_mlflow_metrics_equal_the_metrics_log(tracked):
    client, run_id, wanted = tracked["client"], tracked["mlflow_run"].info.run_id, tracked["expected"]
    assert mlflow_series(client, run_id, "val accuracy") == pytest.approx(wanted["val_accuracy"])
    assert mlflow_series(client, run_id, "val loss") == pytest.approx(wanted["val_loss"])
    assert mlflow_series(client, run_id, "epoch train_loss") == pytest.approx(wanted["train_loss"])
    assert list(mlflow_series(client, run_id, "train loss")) == list(range(LOG_EVERY, LAST_ITERATION + 1, LOG_EVERY))
    assert mlflow_series(client, run_id, "test accuracy") == {
        LAST_ITERATION: pytest.approx(tracked["summary"].test_accuracy)}
    assert tb_series(tracked["events"], "train/loss") == pytest.approx(mlflow_series(client, run_id, "train loss"))


def test_mlflow_run_has_the_config_the_matrix_and_the_best_model(tracked, tmp_path):
    mlflow_run, client, summary = tracked["mlflow_run"], tracked["client"], tracked["summary"]
    on_disk = json.loads((tracked["run_dir"] / "config.json").read_text())
    assert mlflow_run.data.params == {name: str(value) for name, value in on_disk.items()}
    assert mlflow_run.info.status == "FINISHED" and mlflow_run.info.run_name == "r"
    run_id = mlflow_run.info.run_id
    best = Path(summary.run_dir) / summary.best_checkpoint
    model = Path(client.download_artifacts(run_id, f"model/{best.name}", str(tmp_path)))
    assert model.read_bytes() == best.read_bytes()
    matrix_file = client.download_artifacts(run_id, "test/confusion_matrix.json", str(tmp_path))
    matrix = json.loads(Path(matrix_file).read_text())
    counts = matrix["matrix"]
    assert sum(map(sum, counts)) == 300 and len(matrix["classes"]) == 10
    assert sum(counts[i][i] for i in range(10)) / 300 == pytest.approx(summary.test_accuracy)
    assert "test/confusion_matrix.png" in [a.path for a in client.list_artifacts(run_id, "test")]
    assert load_checkpoint(best)["mlflow"]["run_id"] == run_id
    assert not (tracked["run_dir"] / "mlflow.db").exists()  # the server holds it all


def test_a_resumed_run_continues_the_same_tensorboard_dir_and_mlflow_run(idx_root, tmp_path):
    def crash_after_a_checkpoint(parts: Any) -> None:
        def crash(_: Engine) -> None:
            raise RuntimeError("simulated crash")

        parts.trainer.add_event_handler(Events.ITERATION_COMPLETED(once=45), crash)

    config = small_config(idx_root, tmp_path, checkpoint_every=20)  # no --mlflow-uri: the run directory's own store
    with pytest.raises(RuntimeError, match="simulated crash"):
        run(config, attach=crash_after_a_checkpoint)
    run_dir = RunDir(tmp_path / "r")
    crashed = load_checkpoint(find_latest_checkpoint(run_dir.checkpoint_dir))
    assert crashed["trainer"]["iteration"] == 40  # the crash logged steps 41-45 after it

    summary = run(parse_train_args(["--resume", "auto", "--output-dir", str(tmp_path), "--run-name", "r"]))
    assert summary.resumed_at == [40]
    from tensorboard.backend.event_processing.plugin_event_multiplexer import EventMultiplexer

    # `tensorboard --logdir <output dir>` shows it under the run's own name, as one run
    assert list(EventMultiplexer().AddRunsFromDirectory(str(run_dir.path.parent)).Runs()) == [run_dir.path.name]
    log_dir = TensorboardSettings.log_dir(run_dir.path)
    assert len(list(log_dir.glob("events.out.tfevents.*"))) >= 2  # one per part, one dir
    events, wanted = scalars(TensorboardSettings.log_dir(run_dir.path)), expected(run_dir.path)
    # steps 41-45 of the crashed part are purged, not shown twice
    assert list(tb_series(events, "train/loss")) == list(range(LOG_EVERY, LAST_ITERATION + 1, LOG_EVERY))
    assert tb_series(events, "val/accuracy") == pytest.approx(wanted["val_accuracy"])

    client = MlflowClient(f"sqlite:///{MlflowSettings.store(run_dir.path)}")
    (mlflow_run,) = client.search_runs([client.get_experiment_by_name("ignite-mnist").experiment_id])
    assert crashed["mlflow"]["run_id"] == mlflow_run.info.run_id
    assert mlflow_run.info.status == "FINISHED"
    history = mlflow_series(client, mlflow_run.info.run_id, "train loss")  # 45 twice, with one value: exact resume
    assert list(history) == list(range(LOG_EVERY, LAST_ITERATION + 1, LOG_EVERY))
    assert mlflow_series(client, mlflow_run.info.run_id, "val accuracy") == pytest.approx(wanted["val_accuracy"])
    artifacts = [a.path for a in client.list_artifacts(mlflow_run.info.run_id, "model")]
    assert artifacts == [f"model/{Path(summary.best_checkpoint).name}"]
    artifacts = MlflowSettings.artifacts_dir(run_dir.path)
    assert any(artifacts.rglob(Path(summary.best_checkpoint).name))  # inside the run directory


def test_an_unreachable_mlflow_server_costs_seconds_and_training_goes_on(capsys):
    trainer = Engine(lambda engine, batch: float(batch))
    tracker = MlflowTracker(f"http://127.0.0.1:{free_port()}", log_every=1)  # nothing listens there
    tracker.attach(trainer)
    started = time.monotonic()
    assert trainer.run(range(10), max_epochs=2).iteration == 20
    tracker.log_test_report(None)  # type: ignore[arg-type] # never reached: the tracker is not open
    tracker.finish()
    assert time.monotonic() - started < 60  # bounded retries; MLflow alone retries for minutes
    (warning,) = [line for line in capsys.readouterr().err.splitlines() if line.startswith("ignite-mnist")]
    assert warning.startswith("ignite-mnist: warning: MLflow could not start") and "training goes on" in warning
    assert not tracker.opened and tracker.handles


def test_tensorboard_without_its_package_says_in_one_line_how_to_install_it(tmp_path, monkeypatch, capsys):
    from ignite_mnist.tracking.tensorboard import TensorboardTracker

    monkeypatch.setitem(sys.modules, "tensorboard", None)  # its import fails as when it is not installed
    trainer = Engine(lambda engine, batch: 0.5)
    tracker = TensorboardTracker(tmp_path / "r", log_every=1)
    tracker.attach(trainer)
    assert trainer.run(range(3)).iteration == 3
    tracker.finish()
    assert capsys.readouterr().err == (
        'ignite-mnist: warning: TensorBoard could not start (the tensorboard package is not installed: '
        'pip install "ignite-mnist[tensorboard]"); training goes on without TensorBoard\n')
    assert not (tmp_path / "r").exists()


def test_attach_tracker_continues_the_same_mlflow_run_and_tensorboard_log_dir_after_a_resume(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A hand-written trainer with attach_tracker, stopped after iteration 5 (last checkpoint: 4) and resumed."""
    import torch

    from ignite_mnist.handlers import (
        attach_checkpointing,
        attach_tracker,
        detach_tracker,
        resumable_state,
        resume_training,
    )

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)

    def trained(stop_at: int) -> list[Any]:
        trainer = Engine(lambda engine, batch: torch.tensor(float(engine.state.iteration)))
        trackers = [attach_tracker(trainer, kind, tmp_path, log_every=1) for kind in ("mlflow", "tensorboard")]
        attach_checkpointing(trainer, tmp_path / "checkpoints", {"model": torch.nn.Linear(2, 2)},
                             event=Events.ITERATION_COMPLETED(every=2), monitor=None)
        resume_training(tmp_path, trainer)
        trainer.add_event_handler(Events.ITERATION_COMPLETED(once=stop_at), lambda engine: engine.terminate())
        trainer.run(range(4), max_epochs=2)
        for tracker in trackers:
            tracker.finish()
        return trackers

    first = trained(5)
    # TensorBoard reads a log dir's event files in name order: <seconds>.<host>.<pid>.<a per-process counter>. Both
    # parts run in this one process, and a counter going from 9 to 10 within one second sorts the second file
    # first; a new second keeps them in the order they were written, as separate processes would.
    time.sleep(1.1)
    second = trained(100)
    assert second[0].run_id == first[0].run_id
    history = MlflowClient(second[0].tracking_uri).get_metric_history(second[0].run_id, "train loss")
    assert sorted({m.step for m in history}) == list(range(1, 9))
    scalars = EventAccumulator(str(TensorboardSettings.log_dir(tmp_path))).Reload().Scalars("train/loss")
    assert [(e.step, e.value) for e in scalars] == [(step, float(step)) for step in range(1, 9)]  # no step twice

    trainer = Engine(lambda engine, batch: torch.tensor(1.0))
    detached = attach_tracker(trainer, "tensorboard", tmp_path / "detached", log_every=1)
    detached.detach()
    assert "tensorboard" not in resumable_state(trainer).to_save()
    with pytest.warns(DeprecationWarning, match=r"tracker\.detach\(\)"):  # the 0.1 name, kept until 0.3
        detach_tracker(trainer, attach_tracker(trainer, "mlflow", tmp_path / "detached", log_every=1))
    trainer.run(range(3))
    assert not list((tmp_path / "detached").glob("events.out.tfevents.*"))
    assert not (tmp_path / "detached" / "mlflow.db").exists()
