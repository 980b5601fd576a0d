"""The CUDA paths, checked on a machine with a GPU: one line per check, ``PASS``/``FAIL``/``SKIP`` and numbers.

    python benchmarks/gpu_check.py --data-dir /path/to/data     # holds MNIST/raw/

Checks, in order:

* ``nccl``: a process group of one process on NCCL, an all-reduce on the GPU;
* ``autocast-float16``, ``autocast-bfloat16``: 300 steps of the FastCNN under
  ``torch.autocast`` of that dtype (float16 with its ``GradScaler``) through the
  library's own ``create_trainer``: the loss must fall and stay finite; samples/s;
* ``recipe-fast``, ``recipe-one-epoch``: the recipes on CUDA, as a user runs them
  (``ignite-mnist --recipe NAME --device cuda``): their promised test accuracy
  (>= 99 %), and the seconds they took;
* ``export``: the one-epoch run, trained on CUDA, exported to TorchScript (and ONNX
  when the onnx extra is installed); ``export`` checks the file against the eager model.

Without CUDA it prints one ``SKIP`` line with the reason and exits 0, so it can run
anywhere (``tests/test_gpu_check.py`` runs it so); with CUDA it exits 1 when a check failed.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch

Check = Callable[[], str]
RECIPE_ACCURACY = 0.99


class Skip(Exception):
    """A check that cannot run here; the message says why."""


def nccl() -> str:
    import torch.distributed as dist

    if not dist.is_nccl_available():
        raise Skip("this torch build has no NCCL")
    store = dist.HashStore()
    dist.init_process_group("nccl", store=store, rank=0, world_size=1, device_id=torch.device("cuda", 0))
    try:
        tensor = torch.arange(4.0, device="cuda")
        dist.all_reduce(tensor)
        torch.cuda.synchronize()
        assert tensor.tolist() == [0.0, 1.0, 2.0, 3.0], tensor
    finally:
        dist.destroy_process_group()
    return f"all-reduce on 1 process, NCCL {'.'.join(map(str, torch.cuda.nccl.version()))}"


def autocast(dtype: torch.dtype) -> Check:
    def check() -> str:
        from ignite.engine import Events

        from ignite_mnist.engines import create_trainer, make_grad_scaler
        from ignite_mnist.models import build_model

        if dtype == torch.bfloat16 and not torch.cuda.is_bf16_supported():
            raise Skip("this GPU has no bfloat16")
        torch.manual_seed(0)
        model = build_model("fastcnn").cuda()
        optimizer = torch.optim.Adam(model.parameters(), 1e-3)
        scaler = make_grad_scaler("cuda", dtype)
        trainer = create_trainer(model, optimizer, device="cuda", amp=dtype, scaler=scaler)
        labels = torch.randint(0, 10, (128,), device="cuda")
        images = torch.randn(128, 1, 28, 28, device="cuda") + labels.view(-1, 1, 1, 1) / 5  # learnable
        losses: list[float] = []
        trainer.add_event_handler(Events.ITERATION_COMPLETED, lambda engine: losses.append(float(engine.state.output)))
        start = time.perf_counter()
        trainer.run([(images, labels)] * 300, max_epochs=1)
        torch.cuda.synchronize()
        seconds = time.perf_counter() - start
        assert all(math.isfinite(x) for x in losses), "a non-finite loss"
        assert losses[-1] < losses[0] / 2, f"the loss did not fall: {losses[0]:.3f} -> {losses[-1]:.3f}"
        scale = f", loss scale {scaler.get_scale():.0f}" if scaler is not None else ""
        return f"loss {losses[0]:.3f} -> {losses[-1]:.4f}, {300 * 128 / seconds:,.0f} samples/s{scale}"

    return check


def train(args: argparse.Namespace, recipe: str) -> Check:
    def check() -> str:
        if not (Path(args.data_dir) / "MNIST" / "raw").is_dir():
            raise Skip(f"no MNIST under {args.data_dir} (give --data-dir)")
        command = [sys.executable, "-m", "ignite_mnist", "--recipe", recipe, "--device", "cuda", "--data-dir",
                   args.data_dir, "--output-dir", args.output_dir, "--run-name", recipe, "--overwrite",
                   "--wandb-mode", "disabled", "--no-plots", "--progress", "none"]
        start = time.perf_counter()
        done = subprocess.run(command, capture_output=True, text=True, timeout=1800)
        seconds = time.perf_counter() - start
        assert done.returncode == 0, done.stderr.strip().splitlines()[-1:] or done.returncode
        summary = json.loads((Path(args.output_dir) / recipe / "summary.json").read_text())
        accuracy = summary["test_accuracy"]
        assert accuracy >= RECIPE_ACCURACY, f"test accuracy {accuracy:.4f} < {RECIPE_ACCURACY}"
        speed = summary["samples_per_second"]
        return f"test accuracy {accuracy * 100:.2f} %, {seconds:.1f} s in all, {speed:,.0f} samples/s"

    return check


def export(args: argparse.Namespace) -> Check:
    def check() -> str:
        run_dir = Path(args.output_dir) / "one-epoch"
        if not (run_dir / "summary.json").is_file():
            raise Skip("no CUDA-trained run to export (recipe-one-epoch did not run)")
        formats = ["torchscript"] + (["onnx"] if _has("onnx") and _has("onnxruntime") else [])
        for name in formats:
            done = subprocess.run([sys.executable, "-m", "ignite_mnist", "export", str(run_dir), "--format", name],
                                  capture_output=True, text=True, timeout=600)
            assert done.returncode == 0, f"{name}: {done.stderr.strip()}"
        return f"exported and checked: {', '.join(formats)}"

    return check


def _has(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


def run_checks(checks: dict[str, Check]) -> int:
    failed = 0
    for name, check in checks.items():
        try:
            print(f"PASS {name}: {check()}", flush=True)
        except Skip as reason:
            print(f"SKIP {name}: {reason}", flush=True)
        except Exception as error:  # noqa: BLE001 - every failure is one line, and the next check runs
            failed += 1
            print(f"FAIL {name}: {type(error).__name__}: {(str(error).strip().splitlines() or [''])[0]}", flush=True)
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", default=os.environ.get("IGNITE_MNIST_DATA_DIR", "data"))
    parser.add_argument("--output-dir", default=None, help="where the runs go (default: a temporary folder)")
    args = parser.parse_args(argv)
    if not torch.cuda.is_available():
        built = f"built with CUDA {torch.version.cuda}" if torch.version.cuda else "built without CUDA"
        print(f"SKIP gpu_check: no CUDA device here (torch {torch.__version__}, {built}); nothing was checked")
        return 0
    print(f"gpu_check: {torch.cuda.get_device_name(0)}, torch {torch.__version__}, CUDA {torch.version.cuda}")
    with tempfile.TemporaryDirectory(prefix="gpu-check-") as scratch:
        args.output_dir = args.output_dir or scratch
        return run_checks({
            "nccl": nccl,
            "autocast-float16": autocast(torch.float16),
            "autocast-bfloat16": autocast(torch.bfloat16),
            "recipe-fast": train(args, "fast"),
            "recipe-one-epoch": train(args, "one-epoch"),
            "export": export(args),
        })


if __name__ == "__main__":
    sys.exit(main())
