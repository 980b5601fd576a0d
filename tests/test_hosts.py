"""Several hosts on one machine, for real: network namespaces joined by a bridge (``tests/netns.py``).

* Two torchrun agents, one per host, meet through c10d rendezvous on the first host and train
  one job over the namespaces' network; the command is the Slurm batch script's own
  (``examples/slurm/train.sbatch``, run with Slurm's variables set and ``srun`` standing in
  for itself). Its accuracy matches a one-node run's within a point.
* Two ``ignite-mnist sweep`` workers on two hosts share one study on a PostgreSQL server
  reached over that network; one is SIGKILLed in a trial and started again. Every grid point
  is finished once, the dead worker's trial is failed by the heartbeat and retried, none is
  left running, and each trial's run directory is on the host that ran it.

They need root and iproute2 (and PostgreSQL's server binaries): skipped with the reason
where those are missing; ``.ci/run`` installs them, so CI runs these tests.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import REPO, make_idx_dataset
from tests.netns import DEVICE, Hosts, Postgres, unavailable

pytestmark = pytest.mark.slow  # network namespaces, several hosts, a PostgreSQL server

SBATCH = REPO / "examples" / "slurm" / "train.sbatch"
TRAIN = ("--val-size", "1000", "--batch-size", "64", "--epochs", "1", "--device", "cpu", "--backend", "gloo",
         "--progress", "none", "--no-plots", "--wandb-mode", "disabled", "--threads", "1")
GRID = {"lr": [0.003, 0.0003], "seed": [0, 1]}
SWEEP = """\
name: grid
method: grid
metric: {name: val/accuracy, goal: maximize}
parameters:
  lr: {values: [0.003, 0.0003]}
  seed: {values: [0, 1]}
  model: {value: cnn}
  epochs: {value: 3}
  batch_size: {value: 20}
  val_size: {value: 200}
  checkpoint_every: {value: 10}
  plots: {value: false}
  wandb_mode: {value: disabled}
  threads: {value: '1'}
"""


def environment(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("MASTER_ADDR", "MASTER_PORT", "WORLD_SIZE", "RANK")}
    env.update(PYTHONPATH=str(REPO), OMP_NUM_THREADS="1", WANDB_MODE="disabled", GLOO_SOCKET_IFNAME=DEVICE,
               PATH=f"{Path(sys.executable).parent}:{env.get('PATH', '')}", **extra)
    return env


def start(argv: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with open(log, "wb") as out:
        return subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)


def finish(process: subprocess.Popen[bytes], log: Path, timeout: float = 180) -> str:
    """Wait for ``process``; its output (a process that hangs is killed, with its group)."""
    try:
        process.wait(timeout=timeout)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    return log.read_text(errors="replace")


@pytest.fixture
def hosts() -> Iterator[Hosts]:
    reason = unavailable()
    if reason:
        pytest.skip(reason)
    with Hosts(2) as made:
        yield made


@pytest.fixture
def small_mnist(tmp_path: Path) -> Path:
    """4,000 training and 1,000 test images of the real MNIST (as many generated digits without it)."""
    source = Path(os.environ.get("IGNITE_MNIST_DATA_DIR", "/nonexistent")) / "MNIST" / "raw"
    if not (source / "train-images-idx3-ubyte").is_file():
        return make_idx_dataset(tmp_path / "data", n_train=4000, n_test=1000)
    raw = tmp_path / "data" / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for prefix, count in (("train", 4000), ("t10k", 1000)):
        for kind, header, size in (("images-idx3", 16, 784), ("labels-idx1", 8, 1)):
            data = (source / f"{prefix}-{kind}-ubyte").read_bytes()
            head = data[:4] + count.to_bytes(4, "big") + data[8:header]
            (raw / f"{prefix}-{kind}-ubyte").write_bytes(head + data[header:header + count * size])
    return tmp_path / "data"


def test_two_nodes_train_one_job_through_the_slurm_scripts_torchrun_line(
    hosts: Hosts, small_mnist: Path, tmp_path: Path
) -> None:
    srun = tmp_path / "bin" / "srun"  # Slurm's srun, for one node: its options dropped, the command run here
    srun.parent.mkdir()
    srun.write_text('#!/bin/sh\nwhile [ "${1#-}" != "$1" ]; do shift; done\nexec "$@"\n')
    srun.chmod(0o755)
    flags = ["--data-dir", str(small_mnist), *TRAIN]
    nodes = []
    for node in (0, 1):
        env = environment(SLURM_JOB_ID="4242", SLURM_NNODES="2", SLURM_NODEID=str(node), NPROC_PER_NODE="1",
                          RDZV_HOST=hosts.address(0), NODE_ADDR=hosts.address(node), OUTPUT_DIR=str(tmp_path / "runs"),
                          MAX_RESTARTS="0")
        env["PATH"] = f"{srun.parent}:{env['PATH']}"
        log = tmp_path / f"node{node}.log"
        nodes.append((start(hosts.command(node, ["bash", str(SBATCH), *flags]), env, log), log))
    one_log = tmp_path / "one.log"
    one = start([sys.executable, "-m", "ignite_mnist", *flags, "--output-dir", str(tmp_path / "runs"),
                 "--run-name", "one-node"], environment(), one_log)
    outputs = [finish(process, log) for process, log in nodes]
    for (process, _), output in zip(nodes, outputs, strict=False):
        assert process.returncode == 0, output[-3000:]
    assert "--resume auto: nothing to resume" in outputs[0]  # the script's one line: a fresh start
    assert finish(one, one_log) and one.returncode == 0

    two = json.loads((tmp_path / "runs" / "mnist-4242" / "summary.json").read_text())
    single = json.loads((tmp_path / "runs" / "one-node" / "summary.json").read_text())
    assert two["epochs_completed"] == 1 and two["test_accuracy"] > 0.5
    assert abs(two["test_accuracy"] - single["test_accuracy"]) <= 0.01, (two["test_accuracy"], single)
    config = json.loads((tmp_path / "runs" / "mnist-4242" / "config.json").read_text())
    assert config["resume"] is None and config["run_name"] == "mnist-4242"


@pytest.fixture
def database(hosts: Hosts) -> Iterator[Postgres]:
    """A PostgreSQL server on host 0, reached by the hosts at 10.77.0.1."""
    reason = unavailable(postgres=True)
    if reason:
        pytest.skip(reason)
    with Postgres(hosts, 0) as server:
        yield server


def sweep_worker(hosts: Hosts, host: int, spec: Path, output: Path, storage: str, data: Path, log: Path
                 ) -> subprocess.Popen[bytes]:
    argv = [sys.executable, "-m", "ignite_mnist", "sweep", str(spec), "--output-dir", str(output),
            "--storage", storage, "--heartbeat", "1", "--grace-period", "5"]
    return start(hosts.command(host, argv), environment(IGNITE_MNIST_DATA_DIR=str(data)), log)


def wait_until(condition, what: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def test_two_sweep_workers_on_two_hosts_share_a_postgresql_study_and_survive_a_kill(
    hosts: Hosts, database: Postgres, idx_root: Path, tmp_path: Path
) -> None:
    import optuna

    from ignite_mnist.experiments.sweep_storage import open_storage

    spec = tmp_path / "grid.yaml"
    spec.write_text(SWEEP)
    folders = [tmp_path / f"host{i}" / "runs" for i in (0, 1)]  # each host's own disk
    logs = [tmp_path / "host0.log", tmp_path / "host1.log", tmp_path / "host1-again.log"]
    first = sweep_worker(hosts, 0, spec, folders[0], database.url, idx_root, logs[0])
    victim = sweep_worker(hosts, 1, spec, folders[1], database.url, idx_root, logs[1])
    try:
        def victim_in_a_trial() -> bool:  # a trial of host 1 has checkpointed and is not finished
            assert victim.poll() is None, logs[1].read_text()
            return any(not (t / "summary.json").exists() for t in (folders[1] / "grid").glob("trial-*")
                       if list(t.glob("checkpoints/last_checkpoint_*.pt")))

        wait_until(victim_in_a_trial, "a checkpointed trial on host 1")
        os.killpg(victim.pid, signal.SIGKILL)
        victim.wait()
        study = optuna.load_study(study_name="grid", storage=open_storage(database.local_url))
        running = [t for t in study.get_trials() if t.state.name == "RUNNING"
                   and t.user_attrs["worker"]["folder"] == str((folders[1] / "grid").resolve())]
        assert len(running) == 1, [(t.number, t.state, t.user_attrs) for t in study.get_trials()]
        killed = running[0].number
        # host 0 finds the trial's heartbeat stopped, fails it and retries it; then host 1 comes back
        wait_until(lambda: study.get_trials()[killed].state.name == "FAIL", "the heartbeat to fail the trial")
        again = sweep_worker(hosts, 1, spec, folders[1], database.url, idx_root, logs[2])
        outputs = [finish(first, logs[0]), finish(again, logs[2])]
    finally:
        for process in (first, victim):
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
    assert first.returncode == 0 and again.returncode == 0, outputs

    trials = study.get_trials()
    states = Counter(t.state.name for t in trials)
    shown = [(t.number, t.state.name, t.params, t.system_attrs.get("failed_trial")) for t in trials]
    assert states == {"COMPLETE": 4, "FAIL": 1}, (shown, outputs)  # nothing RUNNING or WAITING is left
    done = [t for t in trials if t.state.name == "COMPLETE"]
    assert sorted((t.params["lr"], t.params["seed"]) for t in done) == sorted(
        (lr, seed) for lr in GRID["lr"] for seed in GRID["seed"])  # every grid point finished, once
    (retry,) = [t for t in done if t.system_attrs.get("failed_trial") == killed]
    assert retry.params == trials[killed].params
    for trial in done:  # each trial's run directory is on the host that ran it, and only there
        folder = Path(trial.user_attrs["worker"]["folder"])
        assert (folder / f"trial-{trial.number:04d}" / "summary.json").is_file()
        others = [f / "grid" for f in folders if (f / "grid").resolve() != folder]
        assert len(others) == 1 and not (others[0] / f"trial-{trial.number:04d}").exists()
    assert (folders[1] / "grid" / f"trial-{killed:04d}" / "checkpoints").is_dir()  # the dead one's files stay
    assert f"trial {retry.number}: complete" in outputs[0] + outputs[1]


def test_workers_of_one_postgresql_study_take_new_trials_one_at_a_time(database: Postgres, tmp_path: Path) -> None:
    """The study's lock is a PostgreSQL advisory lock: a worker in another folder (another machine's disk) waits for it
    (tests/test_sweep_claims.py, with the server reached through its Unix socket)."""
    from tests.test_sweep_claims import a_second_folder_waits_for_the_study

    a_second_folder_waits_for_the_study(database.local_url, tmp_path)
