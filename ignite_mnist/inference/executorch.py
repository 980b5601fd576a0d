"""ExecuTorch export: a ``.pte`` program with the XNNPACK delegate, float or int8, for phones and small devices.

ExecuTorch is PyTorch's on-device runtime; its XNNPACK backend runs on Arm and x86
CPUs. Everything here is ExecuTorch's own: ``torch.export`` captures the model,
``to_edge_transform_and_lower`` with the ``XnnpackPartitioner`` lowers it, and
``executorch.runtime`` runs the file for the check. int8 is PT2E post-training
static quantization with ExecuTorch's ``XNNPACKQuantizer`` (symmetric, per channel)
and torchao's ``prepare_pt2e``/``convert_pt2e``. The metadata JSON is a constant
method of the program (:data:`~ignite_mnist.inference.formats.METADATA_NAME`), readable with
``program.load_method("ignite_mnist").execute([])``.

What ignite-mnist adds is the handling of four traps (found with executorch 1.5.1,
torch 2.14.1):

* The batch dimension is dynamic only up to a bound planned into the file:
  ``Dim("batch", min=1, max=MAX_BATCH)`` **and** an example batch of ``MAX_BATCH``
  (a smaller example caps a ConvNet at 15). The bound is read back from the file
  and larger inputs are run in chunks.
* Importing torchao logs a pytree deprecation note through torch's logger, and
  executorch's import raises Deprecation/Experimental warnings: silenced for the import.
* The XNNPACK runtime writes ``cpuinfo`` notes to stderr when the first method
  loads: silenced for that call, so the command line stays one line.
* executorch's binary is tied to libtorch but declares no torch version: a
  mismatch shows up as an ``ImportError`` and is reported in one line with the fix.

Running a ``.pte`` file needs torch: executorch's Python runtime (its pip wheel) is
built against libtorch and imports torch itself. This module imports torch only when
it writes or runs a file, like :mod:`ignite_mnist.inference.export`.

Optional: ``pip install "ignite-mnist[edge]"``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ignite_mnist.errors import first_line
from ignite_mnist.inference.formats import METADATA_NAME, ExportError, ExportFormat, in_chunks
from ignite_mnist.limits import MAX_EXPORTED_BYTES
from ignite_mnist.storage.reader import open_file

if TYPE_CHECKING:
    import torch
    from torch import nn

__all__ = ["EDGE_INSTALL", "EXECUTORCH", "MAX_BATCH"]

#: The largest batch an exported program takes (its memory is planned for it: about 19 MiB for the CNN).
MAX_BATCH = 256
EDGE_INSTALL = 'pip install "ignite-mnist[edge]" (executorch==1.5.1)'


@contextlib.contextmanager
def _importing() -> Iterator[None]:
    """Import executorch (and torchao) quietly; a missing or broken install becomes one line."""
    pytree = logging.getLogger("torch.utils._pytree")
    level = pytree.level
    pytree.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    except ModuleNotFoundError as error:
        if (error.name or "").split(".")[0] != "executorch":
            raise ExportError(f"executorch is installed without {error.name}; {EDGE_INSTALL}") from None
        raise ExportError(f"ExecuTorch needs the edge extra: {EDGE_INSTALL}") from None
    except ImportError as error:  # e.g. an undefined libtorch symbol: executorch built for another torch
        import torch

        raise ExportError(f"executorch cannot be loaded with torch {torch.__version__} ({first_line(error)}); "
                          f"{EDGE_INSTALL}") from None
    finally:
        pytree.setLevel(level)


def _require() -> None:
    with _importing():
        import executorch.runtime  # noqa: F401


def _runtime() -> Any:
    with _importing():
        from executorch.runtime import Runtime
    return Runtime.get()


@contextlib.contextmanager
def _stderr_silenced() -> Iterator[None]:
    """Both ``sys.stderr`` (where the pybindings pass the runtime's log lines) and file descriptor 2 (where
    C++ writes directly) to nowhere."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as null, contextlib.redirect_stderr(null):
            os.dup2(null.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def _capture(model: nn.Module) -> tuple[tuple[torch.Tensor], tuple[dict[int, Any]]]:
    """An example batch of ``MAX_BATCH`` and a batch dimension bounded by it (see the module's first trap)."""
    import torch

    return (torch.zeros(MAX_BATCH, 1, 28, 28),), ({0: torch.export.Dim("batch", min=1, max=MAX_BATCH)},)


def _save(model: nn.Module, path: Path, metadata: str) -> None:
    with _importing():
        from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
        from executorch.exir import to_edge_transform_and_lower
    import torch

    example, dynamic = _capture(model)
    program = torch.export.export(model, example, dynamic_shapes=dynamic)
    with warnings.catch_warnings():  # the serializer reads its schema with a deprecated importlib.resources call
        warnings.simplefilter("ignore", DeprecationWarning)
        lowered = to_edge_transform_and_lower(
            program, partitioner=[XnnpackPartitioner()], constant_methods={METADATA_NAME: metadata}
        ).to_executorch()
        path.write_bytes(lowered.buffer)


def _save_int8(model: nn.Module, path: Path, metadata: str, calibration: torch.Tensor) -> None:
    """PT2E: capture, insert observers, run the calibration images, convert; then lower like a float model."""
    with _importing():
        from executorch.backends.xnnpack.quantizer.xnnpack_quantizer import (
            XNNPACKQuantizer,
            get_symmetric_quantization_config,
        )
        from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e
    import torch

    example, dynamic = _capture(model)
    captured = torch.export.export(model, example, dynamic_shapes=dynamic).module()
    quantizer = XNNPACKQuantizer().set_global(get_symmetric_quantization_config(is_per_channel=True))
    prepared = prepare_pt2e(captured, quantizer)
    with torch.no_grad():
        for start in range(0, len(calibration), MAX_BATCH):
            prepared(calibration[start : start + MAX_BATCH])
    _save(convert_pt2e(prepared), path, metadata)


def _load(path: Path) -> Any:
    runtime = _runtime()
    with _stderr_silenced():
        return runtime.load_program(path)


def _run(path: Path, images: np.ndarray) -> np.ndarray:
    program = _load(path)  # executorch.runtime has imported torch: it takes and gives tensors
    import torch

    with _stderr_silenced():
        method = program.load_method("forward")
    bound = program.metadata("forward").input_tensor_meta(0).sizes()[0]
    return in_chunks(lambda batch: method.execute((torch.from_numpy(np.ascontiguousarray(batch)),))[0].numpy(),
                     images, bound)


def _read_metadata(path: Path) -> str | None:
    program = _load(path)
    if METADATA_NAME not in program.method_names:
        return None
    with _stderr_silenced():
        return str(program.load_method(METADATA_NAME).execute([])[0])


def _check(path: Path) -> None:
    """An ExecuTorch program starts with its flatbuffer identifier (``ET`` and two digits, at byte 4) and its
    extended header (``eh00``, at byte 8); the runtime aborts the process on some files without them."""
    with open_file(path, MAX_EXPORTED_BYTES) as handle:
        head = handle.read(12)
    if not (head[4:6] == b"ET" and head[6:8].isdigit() and head[8:12] == b"eh00"):
        raise ExportError(f"{path}: not an ExecuTorch program (no ET.. eh00 header); export it with "
                          "ignite-mnist export --format executorch")


EXECUTORCH = ExportFormat("executorch", ".pte", _save, _run, _read_metadata, save_int8=_save_int8,
                          require=_require, require_runtime=_require, max_batch=MAX_BATCH, check_file=_check)
