"""The recipes (``--recipe one-epoch|best|mlp-best``), label smoothing and ``--threads``.

The recipes' accuracy claims over seeds 0-4 are benchmarks (``benchmarks/recipe_seeds.py``,
``docs/benchmarks.md``); here: the one-epoch recipe's seed 0 on real MNIST, exact resume of
every recipe after SIGKILL (with the thread count ``auto`` chose), and how ``auto`` decides.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from ignite_mnist import TrainConfig
from ignite_mnist.runtime.threads import ThreadChoice, choose_threads
from ignite_mnist.settings.recipes import RECIPES
from ignite_mnist.storage.checkpoints import load_checkpoint
from ignite_mnist.training.parts import build_parts
from tests.conftest import REPO, assert_same_weights

QUIET = ["--progress", "none", "--tracker", "none", "--no-plots"]


@pytest.mark.integration
def test_one_epoch_recipe_reaches_99_percent_in_one_epoch(mnist_root: Path, tmp_path: Path) -> None:
    """The documented claim of ``--recipe one-epoch`` (seeds 0-4 in docs/benchmarks.md), for seed 0."""
    result = subprocess.run(
        [sys.executable, str(REPO / "examples" / "train_mnist.py"), "--recipe", "one-epoch", "--seed", "0",
         "--data-dir", str(mnist_root), "--output-dir", str(tmp_path), "--run-name", "one", *QUIET],
        capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stderr
    summary = json.loads((tmp_path / "one" / "summary.json").read_text())
    assert summary["epochs_completed"] == 1 and summary["test_accuracy"] >= 0.99


def _train(idx_root: Path, out: Path, name: str, recipe: str, *extra: str) -> list[str]:
    return [sys.executable, "-m", "ignite_mnist", "--recipe", recipe, "--data-dir", str(idx_root), "--val-size",
            "200", "--output-dir", str(out), "--run-name", name, "--batch-size", "25", "--epochs", "2",
            "--checkpoint-every", "10", *QUIET, *extra]


@pytest.mark.slow  # each recipe trained, killed and resumed in subprocesses
@pytest.mark.parametrize("recipe", ["one-epoch", "best", "mlp-best"])
def test_recipe_resumes_bit_identically_with_the_threads_auto_chose(idx_root: Path, tmp_path: Path,
                                                                      recipe: str) -> None:
    # $OMP_NUM_THREADS unset: --threads auto times its probe and decides; config.json keeps the count
    env = {key: value for key, value in os.environ.items() if key != "OMP_NUM_THREADS"}
    killed = subprocess.Popen(_train(idx_root, tmp_path, "k", recipe), env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    mid_run = tmp_path / "k" / "checkpoints" / "last_checkpoint_50.pt"
    deadline = time.monotonic() + 300
    while not mid_run.exists() and killed.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    killed.kill()
    assert killed.wait() == -signal.SIGKILL  # killed before its 80 iterations were done
    chosen = json.loads((tmp_path / "k" / "config.json").read_text())["threads"]
    assert chosen.isdigit()
    reference = subprocess.run(_train(idx_root, tmp_path, "ref", recipe, "--threads", chosen), env=env,
                               capture_output=True, text=True, timeout=300)
    assert reference.returncode == 0, reference.stderr
    resumed = subprocess.run([sys.executable, "-m", "ignite_mnist", "--resume", "auto", "--output-dir",
                              str(tmp_path), "--run-name", "k"], env=env, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    final = [load_checkpoint(tmp_path / name / "checkpoints" / "last_checkpoint_80.pt")["model"]
             for name in ("ref", "k")]
    assert_same_weights(*final)
    assert json.loads((tmp_path / "k" / "summary.json").read_text())["resumed_from"] is not None


def test_recipes_name_only_real_settings() -> None:
    fields = set(TrainConfig.__dataclass_fields__)
    for name, settings in RECIPES.items():
        assert set(settings) <= fields, name
        TrainConfig.from_dict(settings).validate()


def test_label_smoothing_is_checked_and_resumed_as_an_optimisation_setting() -> None:
    from ignite_mnist.errors import ConfigError
    from ignite_mnist.settings.config import EXACT_RESUME_SETTINGS

    assert "label_smoothing" in EXACT_RESUME_SETTINGS
    with pytest.raises(ConfigError, match="--label-smoothing"):
        TrainConfig(label_smoothing=1.0).validate()


class _Clock:
    """The probe's clock (``time.perf_counter`` as :mod:`ignite_mnist.runtime.threads` sees it), moved on by the
    stand-in steps alone: the probe's decision is the same however busy the machine is."""

    def __init__(self) -> None:
        self.now = 0.0

    def perf_counter(self) -> float:
        return self.now


def test_auto_takes_more_threads_only_when_clearly_faster(monkeypatch: pytest.MonkeyPatch) -> None:
    from ignite_mnist.runtime import threads

    clock = _Clock()
    monkeypatch.setattr(threads, "time", clock)

    def _step_taking(per_thread_count: dict[int, float]):
        """A training step stand-in whose duration depends on the thread count torch is set to."""
        return lambda: setattr(clock, "now", clock.now + per_thread_count[torch.get_num_threads()])

    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    before = torch.get_num_threads()
    faster = choose_threads("auto", _step_taking({1: 0.02, 2: 0.01}), cores=2)
    slightly = choose_threads("auto", _step_taking({1: 0.020, 2: 0.019}), cores=2)
    slower = choose_threads("auto", _step_taking({1: 0.01, 2: 0.02}), cores=2)
    assert (faster.threads, slightly.threads, slower.threads) == (2, 1, 1)
    assert faster.measured and "ms per step on 1 thread" in faster.reason and faster.reason.endswith(" ms on 2")
    assert torch.get_num_threads() == before  # the probe leaves the process as it found it


def test_the_probe_stops_once_its_answer_cannot_change(monkeypatch: pytest.MonkeyPatch) -> None:
    """A clear answer (5x faster, or a collapse on a busy machine: 5x slower) takes one round of tries, a close one
    (1.43x) two: after two warm-up steps at each count, each try steps for 50 ms (one step at least; the steps
    here are off that bound, so that the clock's float sums cannot tip a count)."""
    from ignite_mnist.runtime import threads

    clock = _Clock()
    monkeypatch.setattr(threads, "time", clock)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    for per_count, expected_steps, chosen in [({1: 0.06, 2: 0.012}, 4 + 1 + 5, 2), ({1: 0.012, 2: 0.06}, 4 + 5 + 1, 1),
                                              ({1: 0.02, 2: 0.014}, 4 + 2 * (3 + 4), 2)]:
        steps = []

        def step(per_count: dict[int, float] = per_count, steps: list[int] = steps) -> None:
            steps.append(torch.get_num_threads())
            clock.now += per_count[torch.get_num_threads()]

        assert choose_threads("auto", step, cores=2).threads == chosen
        assert len(steps) == expected_steps, per_count


def test_a_count_or_the_environment_is_taken_as_given(monkeypatch: pytest.MonkeyPatch) -> None:
    assert choose_threads("3", probe=None) == ThreadChoice(3, "--threads 3")
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert choose_threads("auto", probe=None) == ThreadChoice(1, "$OMP_NUM_THREADS")
    monkeypatch.delenv("OMP_NUM_THREADS")
    assert choose_threads("auto", probe=None, cores=1) == ThreadChoice(1, "one core")


def test_the_probe_leaves_the_runs_random_numbers_and_weights_alone(idx_root: Path, tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    import contextlib

    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    built = {}
    for threads in ("auto", "1"):
        config = TrainConfig(model="quickcnn", data_dir=str(idx_root), val_size=200, output_dir=str(tmp_path),
                             run_name=threads, threads=threads, batch_size=64)
        with contextlib.ExitStack() as held:
            parts = build_parts(config, None, held)
            built[threads] = (parts.config.threads, parts.model.state_dict(), torch.random.get_rng_state())
    assert built["auto"][0].isdigit()  # parts.config (and config.json) hold the count auto chose
    assert json.loads((tmp_path / "auto" / "config.json").read_text())["threads"] == built["auto"][0]
    assert_same_weights(built["1"][1], built["auto"][1])
    assert torch.equal(built["1"][2], built["auto"][2])
