"""The fast path: both loaders agree, augmentation resumes exactly, cheap loss metrics, schedules, recipe."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import pytest
import torch
from ignite.engine import Engine, Events
from ignite.metrics import Average, RunningAverage

from ignite_mnist import TrainConfig, run
from ignite_mnist.data import LoaderOptions, ResumableDataLoader, TensorLoader, build_loaders, load_splits
from ignite_mnist.data.augment import random_shift_rotate
from ignite_mnist.engines import make_train_step
from ignite_mnist.errors import ConfigError
from ignite_mnist.handlers.loss_averages import attach_loss_averages
from ignite_mnist.handlers.lr_schedule import attach_lr_schedule
from ignite_mnist.handlers.state import resumable_state
from ignite_mnist.runtime.devices import amp_dtype, cpu_has_bfloat16
from ignite_mnist.settings.recipes import FAST_RECIPE, fast_recipe
from ignite_mnist.storage.checkpoints import load_checkpoint
from tests.conftest import assert_same_weights


def _batches(loader, count=None):
    out = []
    for batch in loader:
        out.append(batch)
        if count is not None and len(out) == count:
            break
    return out


def test_classic_and_tensor_loaders_give_the_same_batches_and_resume_alike(idx_root):
    splits = load_splits(idx_root, "mnist", val_size=200, seed=3)
    tensor, _, tensor_test = build_loaders(splits, LoaderOptions(loader="tensor", batch_size=64, seed=5))
    classic, _, classic_test = build_loaders(splits, LoaderOptions(loader="torch", root=idx_root, batch_size=64,
                                                                   seed=5))
    assert isinstance(tensor, TensorLoader) and isinstance(classic, ResumableDataLoader)
    assert len(tensor) == len(classic) == 16 and tensor.num_samples == classic.num_samples == 1000
    for _ in range(2):  # two epochs: each with its own order, the same on both paths
        for (x1, y1), (x2, y2) in zip(_batches(tensor), _batches(classic), strict=True):
            assert torch.equal(y1, y2)
            torch.testing.assert_close(x1, x2, rtol=0, atol=1e-6)
    for (x1, y1), (x2, y2) in zip(_batches(tensor_test), _batches(classic_test), strict=True):
        assert torch.equal(y1, y2)
        torch.testing.assert_close(x1, x2, rtol=0, atol=1e-6)

    _batches(classic, 5)  # interrupted after 5 batches of epoch 2
    state = classic.state_dict()
    assert state == {"epoch": 2, "position": 5}
    resumed, _, _ = build_loaders(splits, LoaderOptions(loader="torch", root=idx_root, batch_size=64, seed=5))
    resumed.load_state_dict(state)
    rest = [y for _, y in resumed]
    expected = [y for _, y in _batches(tensor)][5:]
    assert len(rest) == 11 and all(torch.equal(a, b) for a, b in zip(rest, expected, strict=True))


def test_fast_path_reaches_the_accuracy_of_the_classic_path(idx_root, tmp_path):
    common = {"data_dir": str(idx_root), "val_size": 200, "epochs": 2, "batch_size": 64, "output_dir": str(tmp_path),
              "progress": "none", "wandb_mode": "disabled", "plots": False}
    fast = run(TrainConfig.from_dict(common | {"run_name": "tensor", "loader": "tensor"}))
    classic = run(TrainConfig.from_dict(common | {"run_name": "torch", "loader": "torch"}))
    assert fast.test_accuracy > 0.9  # both learn ...
    assert abs(fast.test_accuracy - classic.test_accuracy) <= 0.02  # ... to the same accuracy
    assert abs(fast.test_loss - classic.test_loss) <= 0.05


def test_augmentation_warps_each_image_and_resumes_exactly():
    images = torch.zeros(6, 1, 28, 28)
    images[:, :, 10:18, 12:16] = 1.0  # a bar, so warps are visible; background 0 as for MNIST
    torch.manual_seed(0)
    warped = random_shift_rotate(images)
    assert warped.shape == images.shape and not torch.allclose(warped, images)
    assert not torch.allclose(warped[0], warped[1])  # a warp of its own for each image
    torch.testing.assert_close(random_shift_rotate(images, max_shift=0, max_degrees=0), images, rtol=0, atol=1e-5)

    raw = torch.randint(0, 255, (40, 28, 28), dtype=torch.uint8)

    def loader():
        return TensorLoader(raw, torch.arange(40), 8, mean=0.1, std=0.3, shuffle=True, seed=1,
                            transform=random_shift_rotate)

    torch.manual_seed(7)
    reference = [x for x, _ in loader()]
    torch.manual_seed(7)
    interrupted = loader()
    _batches(interrupted, 2)
    saved_loader, saved_rng = interrupted.state_dict(), torch.get_rng_state()  # what a checkpoint holds
    torch.manual_seed(123)  # a new process
    resumed = loader()
    resumed.load_state_dict(saved_loader)
    torch.set_rng_state(saved_rng)
    assert all(torch.equal(a, b) for a, b in zip([x for x, _ in resumed], reference[2:], strict=True))


def test_loss_averages_equal_ignites_running_average_and_average():
    losses = [torch.tensor(v) for v in (2.0, 1.5, 1.7, 0.9, 1.1, 0.4, 0.8)]
    ours, ignites = Engine(lambda e, b: b), Engine(lambda e, b: b)
    attach_loss_averages(ours)
    RunningAverage(output_transform=lambda x: x).attach(ignites, "loss")
    Average(output_transform=lambda x: x).attach(ignites, "train_loss")
    seen: list[tuple[float, float]] = []
    ours.add_event_handler(Events.ITERATION_COMPLETED, lambda e: seen.append((e.state.metrics["loss"], 0.0)))
    ignites.add_event_handler(Events.ITERATION_COMPLETED, lambda e: seen.append((e.state.metrics["loss"], 1.0)))
    a, b = ours.run(losses, max_epochs=2, epoch_length=4), ignites.run(losses, max_epochs=2, epoch_length=4)
    assert a.metrics["train_loss"] == pytest.approx(b.metrics["train_loss"], abs=1e-6)
    assert a.metrics["loss"] == pytest.approx(b.metrics["loss"], abs=1e-6)
    per_step = [v for v, who in seen if who == 0.0], [v for v, who in seen if who == 1.0]
    assert per_step[0] == pytest.approx(per_step[1], abs=1e-6)


def test_onecycle_warms_up_to_the_peak_and_ends_low():
    model = torch.nn.Linear(2, 2)
    optimizer = torch.optim.SGD(model.parameters(), lr=1.0)
    trainer = Engine(lambda e, b: None)
    scheduler = attach_lr_schedule(trainer, optimizer, "onecycle", lr=0.5, total_iterations=50).scheduler
    lrs: list[float] = []
    trainer.add_event_handler(Events.ITERATION_STARTED, lambda e: lrs.append(optimizer.param_groups[0]["lr"]))
    trainer.run(range(10), max_epochs=5)
    assert lrs[0] == pytest.approx(0.05) and max(lrs) == pytest.approx(0.5) and lrs[-1] == pytest.approx(0.0005)
    assert lrs.index(max(lrs)) == 10
    assert scheduler is not None and "event_index" in scheduler.state_dict()
    constant = attach_lr_schedule(Engine(lambda e, b: None), optimizer, "constant", lr=0.5, total_iterations=50)
    assert constant.scheduler is None
    constant.detach()

    other = Engine(lambda e, b: None)
    schedule = attach_lr_schedule(other, optimizer, "onecycle", lr=0.5, total_iterations=50)
    schedule.detach()  # the optimizer's rate stays where the first schedule left it, and nothing is saved of it
    other.run(range(10), max_epochs=1)
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.0005)
    assert "lr_scheduler" not in resumable_state(other).to_save()


def test_speed_settings_are_checked():
    with pytest.raises(ConfigError, match=r"--num-workers.*--loader torch"):
        TrainConfig(num_workers=2).validate()
    with pytest.raises(ConfigError, match="--loader"):
        TrainConfig(loader="dali").validate()
    TrainConfig(num_workers=2, loader="torch", augment=True, amp=True, lr_schedule="onecycle").validate()
    config = fast_recipe(seed=4)
    config.validate()
    assert {k: getattr(config, k) for k in FAST_RECIPE} == FAST_RECIPE and config.seed == 4


def test_fast_recipe_trains_with_every_speed_setting(idx_root, tmp_path, capsys):
    summary = run(fast_recipe(data_dir=str(idx_root), val_size=700, epochs=2, output_dir=str(tmp_path),
                              run_name="fast", progress="none", wandb_mode="disabled", plots=False, augment=True))
    assert summary.test_accuracy > 0.5
    note = "--amp: this CPU has no bfloat16 instructions, so training stays in float32"
    assert (note in capsys.readouterr().err) == (not cpu_has_bfloat16())
    rows = [json.loads(line) for line in (tmp_path / "fast" / "metrics.jsonl").read_text().splitlines()]
    lrs = [row["lr"] for row in rows if row.get("kind") == "epoch"]
    assert lrs[-1] < FAST_RECIPE["lr"] / 100  # the one-cycle schedule ran to its end


@pytest.mark.parametrize("amp", [False, True])
def test_amp_runs_the_forward_pass_in_the_dtype_amp_dtype_names(amp):
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3))
    seen: list[torch.dtype] = []
    model[0].register_forward_hook(lambda module, args, output: seen.append(output.dtype))
    step = make_train_step(model, torch.optim.SGD(model.parameters(), lr=0.1), device="cpu", amp=amp)
    loss = step(Engine(lambda e, b: None), (torch.randn(8, 4), torch.randint(0, 3, (8,))))
    expected = (amp_dtype("cpu") if amp else None) or torch.float32
    assert seen == [expected]  # bfloat16 only where the CPU computes it natively, float32 otherwise
    assert loss.dtype == torch.float32 and model[0].weight.dtype == torch.float32
    assert amp_dtype("cpu") == (torch.bfloat16 if cpu_has_bfloat16() else None)


@pytest.mark.slow  # trained, killed and resumed in subprocesses
def test_fast_recipe_with_augmentation_resumes_exactly_after_sigkill(idx_root, tmp_path):
    """One-cycle schedule, augmentation, channels-last FastCNN: killed mid-run, resumed, same weights bit for bit."""
    iterations = 4 * 1000 // 25  # 4 epochs of the 1000 training images, batch 25

    def train(name: str) -> list[str]:
        return [sys.executable, "-m", "ignite_mnist", "--data-dir", str(idx_root), "--val-size", "200",
                "--output-dir", str(tmp_path), "--run-name", name, "--model", "fastcnn", "--optimizer", "adamw",
                "--lr", "3e-3", "--lr-schedule", "onecycle", "--batch-size", "25", "--epochs", "4", "--amp",
                "--augment", "--checkpoint-every", "10", "--progress", "none", "--wandb-mode", "disabled",
                "--no-plots"]

    def final_weights(name: str) -> dict[str, torch.Tensor]:
        checkpoint = load_checkpoint(tmp_path / name / "checkpoints" / f"last_checkpoint_{iterations}.pt")
        assert checkpoint["trainer"]["iteration"] == iterations
        return checkpoint["model"]

    reference = subprocess.run(train("ref"), capture_output=True, text=True, timeout=300)
    assert reference.returncode == 0, reference.stderr
    killed = subprocess.Popen(train("k"), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    mid_run = tmp_path / "k" / "checkpoints" / "last_checkpoint_50.pt"
    deadline = time.monotonic() + 300
    while not mid_run.exists() and killed.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    killed.kill()
    assert killed.wait() == -signal.SIGKILL  # killed before it finished its 160 iterations
    resumed = subprocess.run([sys.executable, "-m", "ignite_mnist", "--resume", "auto", "--output-dir",
                              str(tmp_path), "--run-name", "k"], capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads((tmp_path / "k" / "summary.json").read_text())["resumed_from"] is not None
    assert_same_weights(final_weights("ref"), final_weights("k"))
