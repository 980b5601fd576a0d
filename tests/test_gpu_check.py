"""``benchmarks/gpu_check.py`` without a GPU: one SKIP line that says why, exit 0 (it runs for real only on CUDA)."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from tests.conftest import REPO


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the line printed without CUDA")
def test_without_cuda_the_gpu_check_says_it_skipped_and_why() -> None:
    done = subprocess.run([sys.executable, str(REPO / "benchmarks" / "gpu_check.py")], capture_output=True,
                          text=True, timeout=120, cwd=REPO)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        f"SKIP gpu_check: no CUDA device here (torch {torch.__version__}, "
        + (f"built with CUDA {torch.version.cuda}" if torch.version.cuda else "built without CUDA")
        + "); nothing was checked"
    ]
