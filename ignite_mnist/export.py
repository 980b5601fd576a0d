"""Export a trained model for deployment (TorchScript or ONNX) and prove the file matches it.

The conversion is torch's own: ``torch.jit.script`` for TorchScript and
``torch.onnx.export`` (the ``torch.export``-based exporter, which needs
``onnxscript``) for ONNX, with a dynamic batch dimension. Added here: the exported
file is loaded back (``torch.jit.load``, or an ``onnxruntime`` session) and run on
real test digits, and its logits must equal the eager model's within
:data:`TOLERANCE` (largest absolute difference); otherwise the file is deleted
and :class:`ExportError` raised. ONNX is optional: ``pip install "ignite-mnist[onnx]"``.

Each format is an :class:`ExportFormat`, registered by name in
:data:`ignite_mnist.registry.EXPORT_FORMATS`.

Example:
    >>> import tempfile
    >>> path = Path(tempfile.mkdtemp()) / "linear.torchscript.pt"
    >>> model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(784, 10)).eval()
    >>> TORCHSCRIPT.save(model, path)
    >>> images = torch.zeros(2, 1, 28, 28)
    >>> torch.equal(run_exported(path, "torchscript", images), model(images))
    True
"""

from __future__ import annotations

import contextlib
import io
import re
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from ignite_mnist.data import load_split_tensors, normalise
from ignite_mnist.errors import IgniteMnistError, WriteError
from ignite_mnist.inference import LoadedModel, default_output_path
from ignite_mnist.registry import EXPORT_FORMATS

__all__ = ["CHECK_SAMPLES", "ONNX", "TOLERANCE", "TORCHSCRIPT", "ExportError", "ExportFormat", "ExportResult",
           "export_model", "run_exported"]
#: Largest absolute difference allowed between exported and eager logits.
TOLERANCE = 1e-4
#: How many real test digits the round-trip check runs.
CHECK_SAMPLES = 1000
ONNX_INSTALL = 'pip install "ignite-mnist[onnx]" (onnx, onnxscript, onnxruntime)'


class ExportError(IgniteMnistError):
    """The model could not be exported, or the exported file does not match it."""


@dataclass
class ExportResult:
    """Where the model went and how closely the exported file reproduces it."""

    path: Path
    format: str
    samples: int
    max_abs_difference: float
    tolerance: float = TOLERANCE


@contextlib.contextmanager
def _torchscript_deprecation_silenced() -> Iterator[None]:
    # Recent torch marks TorchScript as deprecated; it still works and is what many runtimes load.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        yield


def _save_torchscript(model: nn.Module, path: Path) -> None:
    with _torchscript_deprecation_silenced():
        torch.jit.script(model).save(str(path))


def _save_onnx(model: nn.Module, path: Path) -> None:
    try:
        import onnx  # noqa: F401  (the exporter needs it; fail early with the install hint)
        import onnxscript  # noqa: F401
    except ImportError:
        raise ExportError(f"ONNX export needs the onnx extra: {ONNX_INSTALL}") from None
    example = torch.zeros(2, 1, 28, 28)
    batch = torch.export.Dim("batch")
    with contextlib.redirect_stdout(io.StringIO()):  # the exporter prints its progress
        torch.onnx.export(
            model, (example,), str(path), input_names=["images"], output_names=["logits"],
            dynamic_shapes=({0: batch},), dynamo=True, external_data=False,
        )


def _run_torchscript(path: Path, images: torch.Tensor) -> torch.Tensor:
    with _torchscript_deprecation_silenced(), torch.inference_mode():
        return torch.jit.load(str(path), map_location="cpu")(images)


def _run_onnx(path: Path, images: torch.Tensor) -> torch.Tensor:
    try:
        import onnxruntime
    except ImportError:
        raise ExportError(f"checking an ONNX file needs onnxruntime: {ONNX_INSTALL}") from None
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (logits,) = session.run(["logits"], {"images": images.numpy()})
    return torch.from_numpy(logits)


@dataclass(frozen=True)
class ExportFormat:
    """One ``--format``: how to write a model file and how to run one (for the check)."""

    name: str
    suffix: str
    save: Callable[[nn.Module, Path], None]
    run: Callable[[Path, torch.Tensor], torch.Tensor]


TORCHSCRIPT = ExportFormat("torchscript", ".torchscript.pt", _save_torchscript, _run_torchscript)
ONNX = ExportFormat("onnx", ".onnx", _save_onnx, _run_onnx)


def _save_or_explain(exporter: ExportFormat, model: nn.Module, path: Path) -> None:
    """Write the file; a folder that cannot be written is one line (exporters wrap the OSError in their own errors)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        exporter.save(model, path)
    except Exception as raised:  # noqa: BLE001 - torch's writers wrap the OSError: find it, else re-raise
        error = raised if isinstance(raised, OSError) else raised.__context__ or raised.__cause__
        reason = re.search(r"strerror: ([^\n]+)", str(raised))  # TorchScript's C++ writer only says it in words
        if not isinstance(error, OSError) and reason is None:
            raise
        because = error if isinstance(error, OSError) else reason.group(1).strip()  # type: ignore[union-attr]
        raise WriteError(path, because, "pass --output PATH in a writable folder") from None


def run_exported(path: str | Path, format: str, images: torch.Tensor) -> torch.Tensor:
    """Logits of an exported model file for normalised ``(N, 1, 28, 28)`` images."""
    return EXPORT_FORMATS.load(format).run(Path(path), images)


def export_model(
    loaded: LoadedModel,
    path: str | Path | None,
    format: str,
    *,
    data_dir: str | Path | None = None,
    samples: int = CHECK_SAMPLES,
) -> ExportResult:
    """Write ``loaded``'s model as ``format`` and check it on ``samples`` real test images.

    Args:
        loaded: from :func:`ignite_mnist.inference.load_model`.
        path: output file; default in the run directory, named after the checkpoint
            (``.torchscript.pt`` / ``.onnx``).
        format: a name of :data:`ignite_mnist.registry.EXPORT_FORMATS`.
        data_dir: dataset root for the check images; default the run's.
        samples: how many test images the check runs.

    Raises:
        ExportError: unknown format, ONNX packages missing, or outputs that differ
            by more than ``TOLERANCE`` (the file is removed).
    """
    if format not in EXPORT_FORMATS:
        raise ExportError(f"unknown export format {format!r}; choose from {', '.join(EXPORT_FORMATS)}")
    exporter: ExportFormat = EXPORT_FORMATS.load(format)
    path = Path(path) if path is not None else default_output_path(loaded.path, exporter.suffix)
    images, _ = load_split_tensors(data_dir or loaded.config.data_dir, loaded.config.dataset, train=False)
    inputs = normalise(images[:samples], loaded.spec.mean, loaded.spec.std)
    model = loaded.model.cpu().eval()
    with torch.inference_mode():
        eager = model(inputs)
    _save_or_explain(exporter, model, path)
    difference = float((exporter.run(path, inputs) - eager).abs().max())
    if not difference <= TOLERANCE:
        path.unlink(missing_ok=True)
        raise ExportError(
            f"the exported {format} model differs from the eager model by {difference:.3g} "
            f"(tolerance {TOLERANCE:g}) on {len(inputs)} test images; nothing was written"
        )
    return ExportResult(path, format, len(inputs), difference)
