"""examples/custom_trainer.py: a user's own Engine with ignite-mnist's handlers attached."""

import subprocess
import sys

from tests.conftest import REPO


def run_example(root, output, epochs):
    return subprocess.run(
        [sys.executable, str(REPO / "examples" / "custom_trainer.py"), "--data-dir", str(root), "--output-dir",
         str(output), "--epochs", str(epochs), "--progress", "log"],
        capture_output=True, text=True, timeout=600,
    )


def test_custom_trainer_validates_checkpoints_and_resumes(idx_root, tmp_path):
    first = run_example(idx_root, tmp_path, 2)
    assert first.returncode == 0, first.stderr
    assert "validation: accuracy" in first.stdout and "\r" not in first.stdout
    checkpoints = sorted(p.name for p in (tmp_path / "checkpoints").iterdir())
    assert "last_checkpoint_4.pt" in checkpoints  # 200 training images / 64 per batch = 4 iterations per epoch
    assert any(name.startswith("best_checkpoint_") for name in checkpoints)

    second = run_example(idx_root, tmp_path, 3)
    assert second.returncode == 0, second.stderr
    assert "resumed from" in second.stdout and "epoch 3/3 done" in second.stdout
    assert "epoch 1/3 done" not in second.stdout
    assert (tmp_path / "checkpoints" / "last_checkpoint_12.pt").exists()
