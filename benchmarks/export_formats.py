"""Every export format against the eager model: file size, test accuracy, agreement, latency, throughput.

For each run given, the model is exported with ``ignite_mnist.inference.export.export_model``
(so the files are exactly what ``ignite-mnist export`` writes, each checked on the
whole test set) as TorchScript, ONNX, ONNX int8, ExecuTorch and ExecuTorch int8;
"eager" is the PyTorch model itself (its size: its ``state_dict`` saved with
``torch.save``). Each file is then loaded with its own runtime the way an
application would (``torch.jit.load``, an ``onnxruntime.InferenceSession``,
``executorch.runtime``) and measured:

* test accuracy and agreement with the eager model (same predicted digit) on all test images;
* batch-1 latency: the median of ``--calls`` calls, each on a different test image
  (after 100 warm-up calls);
* batch-256 throughput: 256 / the median time of ``--batches`` calls on batches of 256.

Everything runs on ``--threads`` threads (default 1: ``torch.set_num_threads``,
ONNX Runtime's ``intra_op_num_threads``, ExecuTorch's threadpool). The contenders
run in a different random order in each of ``--rounds`` rounds; the table gives the
median of the round medians and their range, and the load average of the machine
before, during and after. Ratios: size against the float file of the same format
(eager for eager), latency and throughput against eager.

Usage:
    python benchmarks/export_formats.py RUN_DIR [RUN_DIR ...] --rounds 5 --json results.json
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import tempfile
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ignite_mnist.data import load_split_tensors, normalise
from ignite_mnist.inference.export import export_model
from ignite_mnist.inference.trained import LoadedModel, load_model
from ignite_mnist.registry import EXPORT_FORMATS

BATCH = 256
#: (label, format, quantization) of every exported contender, in the table's order.
EXPORTS = (("torchscript", "torchscript", None), ("onnxruntime float", "onnx", None),
           ("onnxruntime int8", "onnx", "int8"), ("executorch float", "executorch", None),
           ("executorch int8", "executorch", "int8"))


@dataclass
class Contender:
    """One way of running one model: a callable on a normalised batch, and the file it came from."""

    model: str
    label: str
    file: Path
    run: Callable[[torch.Tensor], torch.Tensor]
    float_file: Path
    latency_us: list[float] = field(default_factory=list)
    images_per_second: list[float] = field(default_factory=list)
    quality: dict[str, float] = field(default_factory=dict)


def _set_threads(threads: int) -> None:
    torch.set_num_threads(threads)
    from executorch.extension.pybindings.portable_lib import _unsafe_reset_threadpool

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _unsafe_reset_threadpool(threads)  # experimental API of executorch; it logs one line on stderr


def _runner(file: Path, format: str, threads: int) -> Callable[[torch.Tensor], torch.Tensor]:
    """Load a file once with its runtime, as an application would; return a function of one batch."""
    if format == "torchscript":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            module = torch.jit.load(str(file))
        return lambda x: _no_grad(module, x)
    if format == "onnx":
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
        session = onnxruntime.InferenceSession(str(file), options, providers=["CPUExecutionProvider"])
        return lambda x: torch.from_numpy(session.run(["logits"], {"images": x.numpy()})[0])
    from executorch.runtime import Runtime

    method = Runtime.get().load_program(file).load_method("forward")
    return lambda x: method.execute((x,))[0]


def _no_grad(module: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    with torch.inference_mode():
        return module(x)


def contenders(loaded: LoadedModel, folder: Path, threads: int) -> list[Contender]:
    """Eager plus every export of ``loaded`` (written to ``folder`` and checked by ``export_model``)."""
    name = loaded.config.model
    eager_file = folder / f"{name}.state_dict.pt"
    torch.save(loaded.model.state_dict(), eager_file)
    found = [Contender(name, "eager", eager_file, lambda x: _no_grad(loaded.model, x), eager_file)]
    for label, format, quantize in EXPORTS:
        suffix = EXPORT_FORMATS.load(format).suffix
        started = time.perf_counter()
        result = export_model(loaded, folder / f"{name}{'.' + quantize if quantize else ''}{suffix}", format,
                              quantize=quantize)
        print(f"{name} {label}: exported and checked in {time.perf_counter() - started:.0f} s", flush=True)
        found.append(Contender(name, label, result.path, _runner(result.path, format, threads),
                               folder / f"{name}{suffix}"))
    return found


def measure_quality(found: list[Contender], images: torch.Tensor, labels: torch.Tensor) -> None:
    logits = {c.label: torch.cat([c.run(part.contiguous()) for part in images.split(BATCH)]) for c in found}
    eager = logits["eager"].argmax(1)
    for c in found:
        predicted = logits[c.label].argmax(1)
        c.quality = {"accuracy": float((predicted == labels).double().mean()),
                     "agreement": float((predicted == eager).double().mean()),
                     "max_abs_logit_difference": float((logits[c.label] - logits["eager"]).abs().max())}


def measure_speed(c: Contender, singles: list[torch.Tensor], batches: list[torch.Tensor], repeats: int) -> None:
    for x in singles[:100]:
        c.run(x)
    times = []
    for x in singles:
        started = time.perf_counter_ns()
        c.run(x)
        times.append(time.perf_counter_ns() - started)
    c.latency_us.append(statistics.median(times) / 1e3)
    for x in batches[:3]:
        c.run(x)
    times = []
    for i in range(repeats):
        x = batches[i % len(batches)]
        started = time.perf_counter_ns()
        c.run(x)
        times.append(time.perf_counter_ns() - started)
    c.images_per_second.append(BATCH / (statistics.median(times) / 1e9))


def _range(values: list[float], digits: int = 0) -> str:
    return f"{statistics.median(values):,.{digits}f} ({min(values):,.{digits}f}-{max(values):,.{digits}f})"


def table(found: list[Contender]) -> str:
    rows = [("| model | format | file KiB | % of float file | test accuracy % | Δ vs eager (points) | "
            "same digit as eager % | batch-1 latency µs (median; range of rounds) | × eager | "
            "batch-256 images/s (median; range) | × eager |"),
            "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    eager = {c.model: c for c in found if c.label == "eager"}
    for c in found:
        base = eager[c.model]
        size, float_size = c.file.stat().st_size, c.float_file.stat().st_size
        latency, throughput = statistics.median(c.latency_us), statistics.median(c.images_per_second)
        rows.append(
            f"| {c.model} | {c.label} | {size / 1024:,.0f} | {100 * size / float_size:.1f} | "
            f"{100 * c.quality['accuracy']:.2f} | {100 * (c.quality['accuracy'] - base.quality['accuracy']):+.2f} | "
            f"{100 * c.quality['agreement']:.2f} | {_range(c.latency_us)} | "
            f"{latency / statistics.median(base.latency_us):.2f} | {_range(c.images_per_second)} | "
            f"{throughput / statistics.median(base.images_per_second):.2f} |")
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", help="run directories or checkpoints (one per model)")
    parser.add_argument("--data-dir", default=None, help="dataset root (default: each run's)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--calls", type=int, default=1000, help="batch-1 calls per round")
    parser.add_argument("--batches", type=int, default=30, help="batch-256 calls per round")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--output-dir", default=None, help="where the exported files go (default: a temporary folder)")
    parser.add_argument("--json", default=None, help="also write the measurements to this JSON file")
    args = parser.parse_args()
    _set_threads(args.threads)
    folder = Path(args.output_dir or tempfile.mkdtemp(prefix="export-formats-"))
    folder.mkdir(parents=True, exist_ok=True)
    load = {"before": os.getloadavg()[0]}
    found = []
    for run in args.runs:
        loaded = load_model(run)
        images, labels = load_split_tensors(args.data_dir or loaded.config.data_dir, loaded.config.dataset, False)
        inputs = normalise(images, loaded.spec.mean, loaded.spec.std)
        model_contenders = contenders(loaded, folder, args.threads)
        measure_quality(model_contenders, inputs, labels)
        singles = [inputs[i : i + 1].clone() for i in range(args.calls)]
        batches = [inputs[i : i + BATCH].clone() for i in range(0, len(inputs) - BATCH + 1, BATCH)]
        for round_index in range(args.rounds):
            for c in random.Random(round_index).sample(model_contenders, len(model_contenders)):
                measure_speed(c, singles, batches, args.batches)
            load[f"{loaded.config.model} round {round_index}"] = os.getloadavg()[0]
        found += model_contenders
    load["after"] = os.getloadavg()[0]
    print(f"\nfiles in {folder}; {args.threads} thread(s); {args.rounds} rounds; load average (1 min): "
          + ", ".join(f"{key} {value:.1f}" for key, value in load.items()) + "\n")
    print(table(found))
    if args.json:
        rows: list[dict[str, Any]] = [{"model": c.model, "format": c.label, "bytes": c.file.stat().st_size,
                                       "float_bytes": c.float_file.stat().st_size, **c.quality,
                                       "latency_us": c.latency_us, "images_per_second": c.images_per_second}
                                      for c in found]
        Path(args.json).write_text(json.dumps({"load_average": load, "threads": args.threads, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
