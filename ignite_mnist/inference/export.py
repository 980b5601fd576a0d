"""Export a trained model for deployment (TorchScript, ONNX, ExecuTorch), prove the file matches it, describe it.

The conversions are the libraries': ``torch.jit.script`` for TorchScript,
``torch.onnx.export`` (the ``torch.export``-based exporter, which needs
``onnxscript``) for ONNX, and ExecuTorch's XNNPACK lowering for ``.pte`` files
(:mod:`ignite_mnist.inference.executorch`). ``quantize="int8"`` is post-training static
quantization calibrated on :data:`CALIBRATION_SAMPLES` training images: ONNX Runtime's
``quantize_static`` for ONNX, PT2E with the XNNPACK quantizer for ExecuTorch.

Added here: the written file is loaded back with its own runtime (``torch.jit.load``,
an ``onnxruntime`` session, ``executorch.runtime``) and run on the real test set.
A float file must give the eager model's logits within :data:`TOLERANCE` (largest
absolute difference); an int8 file must stay within :data:`INT8_MAX_ACCURACY_DROP`
of the eager model's test accuracy (its logits move by whole units, its digits
hardly). Otherwise the file is deleted and :class:`ExportError` raised.

Every file describes itself: the JSON of :func:`export_metadata` (dataset, classes,
normalisation, input, model, test accuracy, project version) is stored inside it
(ONNX ``metadata_props``, a TorchScript extra file, an ExecuTorch constant method,
each named :data:`~ignite_mnist.inference.formats.METADATA_NAME`) and, with the check's
results, in a sidecar ``<file>.json`` beside it.
:func:`~ignite_mnist.inference.exported.load_exported` reads it back, so
:func:`ignite_mnist.inference.classify.predict` can use the file alone.

Each format is an :class:`~ignite_mnist.inference.formats.ExportFormat`, registered by name in
:data:`ignite_mnist.registry.EXPORT_FORMATS`. Reading and running a file is numpy
(:mod:`ignite_mnist.inference.exported`); torch is imported here only to write one
(or to run a TorchScript file), so loading a format to run an ONNX file loads no torch.

Example:
    >>> import tempfile
    >>> import torch
    >>> path = Path(tempfile.mkdtemp()) / "linear.torchscript.pt"
    >>> model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(784, 10)).eval()
    >>> TORCHSCRIPT.save(model, path, '{"model": "linear"}')
    >>> images = torch.zeros(2, 1, 28, 28)
    >>> torch.equal(run_exported(path, "torchscript", images), model(images))
    True
    >>> TORCHSCRIPT.read_metadata(path)
    '{"model": "linear"}'
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import re
import tempfile
import warnings
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ignite_mnist._moved import moved_attribute
from ignite_mnist._version import __version__
from ignite_mnist.errors import ConfigError, WriteError, first_line
from ignite_mnist.inference.formats import (
    INPUT_NAME,
    METADATA_NAME,
    OUTPUT_NAME,
    ExportError,
    ExportFormat,
    in_chunks,
    sidecar_path,
)
from ignite_mnist.limits import MAX_EXPORTED_BYTES
from ignite_mnist.registry import EXPORT_FORMATS, QUANTIZATIONS
from ignite_mnist.storage.files import replacing_path, write_json

if TYPE_CHECKING:
    import torch
    from torch import nn

    from ignite_mnist.inference.trained import LoadedModel

# METADATA_NAME, ExportError, ExportFormat, in_chunks and sidecar_path belong to ignite_mnist.inference.formats
# (no torch); they are named here too, where export used to define them. Reading an exported file back
# (load_exported, is_exported, ExportedModel) is ignite_mnist.inference.exported: those names answer here
# with a DeprecationWarning until 0.3 (__getattr__ below).
__all__ = ["CALIBRATION_SAMPLES", "INT8_MAX_ACCURACY_DROP", "METADATA_NAME", "ONNX", "TOLERANCE", "TORCHSCRIPT",
           "ExportError", "ExportFormat", "ExportResult", "export_metadata", "export_model", "exporter_for",
           "in_chunks", "run_exported", "sidecar_path"]

#: Largest absolute difference allowed between a float file's logits and the eager model's.
TOLERANCE = 1e-4
#: How much lower than the eager model's an int8 file's test accuracy may be (0.003 = 0.3 points).
INT8_MAX_ACCURACY_DROP = 0.003
#: How many training images (drawn with seed 0) calibrate int8 quantization.
CALIBRATION_SAMPLES = 256
ONNX_INSTALL = 'pip install "ignite-mnist[onnx]" (onnx, onnxscript, onnxruntime)'


@contextlib.contextmanager
def _torchscript_deprecation_silenced() -> Iterator[None]:
    # Recent torch marks TorchScript as deprecated; it still works and is what many runtimes load.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        yield


def _save_torchscript(model: nn.Module, path: Path, metadata: str) -> None:
    import torch

    with _torchscript_deprecation_silenced():
        torch.jit.script(model).save(str(path), _extra_files={f"{METADATA_NAME}.json": metadata})


def _load_torchscript(path: Path, extra_files: dict[str, Any] | None = None) -> torch.jit.ScriptModule:
    import torch

    with _torchscript_deprecation_silenced():
        loaded: torch.jit.ScriptModule = torch.jit.load(str(path), map_location="cpu", _extra_files=extra_files)
    return loaded


def _run_torchscript(path: Path, images: np.ndarray) -> np.ndarray:
    import torch

    module = _load_torchscript(path)
    with _torchscript_deprecation_silenced(), torch.inference_mode():
        return in_chunks(lambda batch: module(torch.from_numpy(batch)).numpy(), images)


def _read_torchscript_metadata(path: Path) -> str | None:
    extra: dict[str, Any] = {f"{METADATA_NAME}.json": ""}
    _load_torchscript(path, extra)  # fills in the file's content, as bytes
    return bytes(extra[f"{METADATA_NAME}.json"]).decode("utf-8") or None


def _require_onnx() -> None:
    try:
        import onnx  # noqa: F401  (the exporter needs it; fail early with the install hint)
        import onnxruntime  # noqa: F401
        import onnxscript  # noqa: F401
    except ImportError:
        raise ExportError(f"ONNX export needs the onnx extra: {ONNX_INSTALL}") from None


def _require_onnxruntime() -> None:
    try:
        import onnxruntime  # noqa: F401  (running a file needs only the runtime)
    except ImportError:
        raise ExportError(f"running an ONNX file needs onnxruntime: {ONNX_INSTALL}") from None


def _save_onnx(model: nn.Module, path: Path, metadata: str) -> None:
    import torch

    batch = torch.export.Dim("batch")
    with contextlib.redirect_stdout(io.StringIO()):  # the exporter prints its progress
        program = torch.onnx.export(
            model, (torch.zeros(2, 1, 28, 28),), input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
            dynamic_shapes=({0: batch},), dynamo=True,
        )
    assert program is not None  # dynamo=True: an ONNXProgram
    program.model.metadata_props[METADATA_NAME] = metadata
    program.save(str(path), external_data=False)


class _CalibrationImages:
    """ONNX Runtime's ``CalibrationDataReader`` interface over normalised images, in batches."""

    def __init__(self, images: torch.Tensor, batch_size: int = 64) -> None:
        self._batches = iter([{INPUT_NAME: images[i : i + batch_size].numpy()}
                              for i in range(0, len(images), batch_size)])

    def get_next(self) -> dict[str, Any] | None:
        return next(self._batches, None)


def _save_onnx_int8(model: nn.Module, path: Path, metadata: str, calibration: torch.Tensor) -> None:
    """Float ONNX (metadata included; it survives), then ONNX Runtime's static QDQ quantization, per channel.

    ``reduce_range=True`` (7-bit weights) always: ONNX Runtime's int8 kernels on x86 CPUs
    without VNNI saturate with 8-bit weights, and a file is made on one machine and run on others.
    """
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    with tempfile.TemporaryDirectory() as folder, _root_warnings_silenced():
        float_file, prepared = Path(folder) / "float.onnx", Path(folder) / "prepared.onnx"
        _save_onnx(model, float_file, metadata)
        quant_pre_process(str(float_file), str(prepared))
        quantize_static(
            str(prepared), str(path), _CalibrationImages(calibration), quant_format=QuantFormat.QDQ,
            per_channel=True, activation_type=QuantType.QInt8, weight_type=QuantType.QInt8, reduce_range=True,
        )


@contextlib.contextmanager
def _root_warnings_silenced() -> Iterator[None]:
    # onnxruntime.quantization logs notes such as "Axis 1 is out-of-range for weight ..." (BatchNorm) on the root logger
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        yield
    finally:
        root.setLevel(level)


def _onnx_session(path: Path) -> Any:
    import onnxruntime

    return onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def _run_onnx(path: Path, images: np.ndarray) -> np.ndarray:
    session = _onnx_session(path)
    return in_chunks(lambda batch: session.run([OUTPUT_NAME], {INPUT_NAME: batch})[0], images)


def _read_onnx_metadata(path: Path) -> str | None:
    found: str | None = _onnx_session(path).get_modelmeta().custom_metadata_map.get(METADATA_NAME)
    return found


def _check_torchscript(path: Path) -> None:
    """A TorchScript file is a zip archive holding ``code/`` and ``constants.pkl``, unpacking to a bounded size."""
    try:
        with zipfile.ZipFile(path) as archive:
            entries = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError) as error:
        raise ExportError(f"{path}: not a TorchScript file (not a zip archive: {first_line(error)})") from None
    names = [entry.filename for entry in entries]
    if not any(name.endswith("/constants.pkl") for name in names) or not any("/code/" in name for name in names):
        raise ExportError(f"{path}: not a TorchScript file (no code/ and constants.pkl inside)")
    if sum(entry.file_size for entry in entries) > MAX_EXPORTED_BYTES:
        raise ExportError(f"{path}: refused: it would unpack to more than {MAX_EXPORTED_BYTES >> 20} MiB")


def _check_onnx(path: Path) -> None:
    """An ONNX file parses as a model (protobuf, in Python) and passes ONNX's checker before ONNX Runtime sees it."""
    import onnx

    try:
        onnx.checker.check_model(onnx.load(str(path)))
    except Exception as error:  # noqa: BLE001 - protobuf's decode errors and the checker's have no common base
        raise ExportError(f"{path}: not a valid ONNX model ({type(error).__name__}: {first_line(error)})") from None


TORCHSCRIPT = ExportFormat("torchscript", ".torchscript.pt", _save_torchscript, _run_torchscript,
                           _read_torchscript_metadata, check_file=_check_torchscript)
ONNX = ExportFormat("onnx", ".onnx", _save_onnx, _run_onnx, _read_onnx_metadata, save_int8=_save_onnx_int8,
                    require=_require_onnx, require_runtime=_require_onnxruntime, check_file=_check_onnx)


def export_metadata(
    loaded: LoadedModel, exporter: ExportFormat, quantize: str | None, accuracy: float, samples: int
) -> dict[str, Any]:
    """What a program using the file needs to know, stored inside it and in its sidecar.

    ``accuracy`` is the eager model's on ``samples`` test images (the file's own is in the sidecar).
    """
    return {
        "ignite_mnist_version": __version__,
        "format": exporter.name,
        "quantization": quantize,
        "model": loaded.config.model,
        "checkpoint": loaded.path.name,
        "dataset": loaded.spec.to_dict(),
        "input": {"name": INPUT_NAME, "shape": ["batch", 1, 28, 28], "dtype": "float32",
                  "max_batch": exporter.max_batch,
                  "preprocessing": "grayscale 28x28, light digit on dark background, pixel / 255, "
                                   "then (x - mean) / std with the dataset's mean and std"},
        "output": {"name": OUTPUT_NAME, "shape": ["batch", len(loaded.classes)],
                   "meaning": "unnormalised scores (logits) of dataset.classes; softmax gives probabilities"},
        "test_accuracy": accuracy,
        "test_images": samples,
    }


@dataclass
class ExportResult:
    """Where the model went and how closely the exported file reproduces it on the test images."""

    path: Path
    format: str
    quantization: str | None
    samples: int
    max_abs_difference: float
    agreement: float
    accuracy: float
    eager_accuracy: float
    sidecar: Path

    def format_line(self) -> str:
        """One line for the command line: the file, its size and the check's numbers.

        Example:
            >>> print(ExportResult(Path("m.onnx"), "onnx", None, 10000, 3e-6, 1.0, 0.9847, 0.9847,
            ...                    Path("m.onnx.json")).format_line())  # doctest: +NORMALIZE_WHITESPACE
            onnx model written to m.onnx (metadata also in m.onnx.json); on 10000 test images its logits differ
            from the eager model's by at most 3.00e-06 (tolerance 0.0001), the same digit on 100.00 %,
            accuracy 98.47 % (eager 98.47 %)
        """
        kind = f"{self.format} {self.quantization}" if self.quantization else self.format
        if self.quantization:
            check = (f"accuracy {100 * self.accuracy:.2f} % (eager {100 * self.eager_accuracy:.2f} %, "
                     f"at most {100 * INT8_MAX_ACCURACY_DROP:.1f} points lower allowed), the same digit as the "
                     f"eager model on {100 * self.agreement:.2f} % "
                     f"(logits differ by up to {self.max_abs_difference:.2g})")
        else:
            check = (f"its logits differ from the eager model's by at most {self.max_abs_difference:.2e} "
                     f"(tolerance {TOLERANCE:g}), the same digit on {100 * self.agreement:.2f} %, "
                     f"accuracy {100 * self.accuracy:.2f} % (eager {100 * self.eager_accuracy:.2f} %)")
        return (f"{kind} model written to {self.path} (metadata also in {self.sidecar}); "
                f"on {self.samples} test images {check}")


def _save_or_explain(save: Callable[[Path], None], path: Path) -> None:
    """Write the file (to ``<path>.partial``, then renamed: a link at ``path`` is replaced, never written through); a
    folder that cannot be written is one line (exporters wrap the OSError in their own errors)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with replacing_path(path) as partial:
            save(partial)
    except Exception as raised:  # torch's writers wrap the OSError: find it, else re-raise
        error = raised if isinstance(raised, OSError) else raised.__context__ or raised.__cause__
        reason = re.search(r"strerror: ([^\n]+)", str(raised))  # TorchScript's C++ writer only says it in words
        if not isinstance(error, OSError) and reason is None:
            raise
        because = error if isinstance(error, OSError) else reason.group(1).strip()  # type: ignore[union-attr]
        raise WriteError(path, because, "pass --output PATH in a writable folder") from None


def run_exported(path: str | Path, format: str, images: torch.Tensor) -> torch.Tensor:
    """Logits of an exported model file for normalised ``(N, 1, 28, 28)`` images (any ``N``), as a tensor (the
    format runs numpy arrays: :class:`~ignite_mnist.inference.formats.ExportFormat`)."""
    import torch

    return torch.from_numpy(EXPORT_FORMATS.load(format).run(Path(path), images.contiguous().numpy()))


def exporter_for(format: str, quantize: str | None = None) -> ExportFormat:
    """The :class:`ExportFormat` of ``format``, once its packages are there and it can take ``quantize``.

    Raises:
        ExportError: unknown format, or its packages are missing (the message says what to install).
        ConfigError: ``quantize`` is unknown or the format cannot take it (a usage error).

    Example:
        >>> exporter_for("torchscript", "int8")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        ignite_mnist.errors.ConfigError: --quantize: torchscript files cannot be quantized here; int8 is available ...
    """
    if format not in EXPORT_FORMATS:
        raise ExportError(f"unknown export format {format!r}; choose from {', '.join(EXPORT_FORMATS)}")
    exporter: ExportFormat = EXPORT_FORMATS.load(format)
    if quantize is not None and quantize not in QUANTIZATIONS:
        raise ConfigError("--quantize", f"unknown quantization {quantize!r}; choose from {', '.join(QUANTIZATIONS)}")
    if quantize is not None and exporter.save_int8 is None:
        takers = [name for name in EXPORT_FORMATS if EXPORT_FORMATS.load(name).save_int8 is not None]
        raise ConfigError("--quantize", f"{format} files cannot be quantized here; {quantize} is available for "
                                        f"{', '.join(takers)}")
    exporter.require()
    return exporter


def _calibration_images(loaded: LoadedModel, data_dir: str | Path) -> torch.Tensor:
    import torch

    from ignite_mnist.data import load_split_tensors, normalise

    images, _ = load_split_tensors(data_dir, loaded.config.dataset, train=True)
    chosen = torch.randperm(len(images), generator=torch.Generator().manual_seed(0))[:CALIBRATION_SAMPLES]
    return normalise(images[chosen], loaded.spec.mean, loaded.spec.std)


def _accuracy(logits: torch.Tensor, labels: torch.Tensor) -> float:
    return float((logits.argmax(1) == labels).double().mean())


def _write(loaded: LoadedModel, exporter: ExportFormat, path: Path, quantize: str | None, metadata: str,
           data_dir: str | Path) -> None:
    model = loaded.model.cpu().eval()
    def save(target: Path) -> None:
        exporter.save(model, target, metadata)

    if quantize is not None:
        save_int8, calibration = exporter.save_int8, _calibration_images(loaded, data_dir)

        def save(target: Path) -> None:  # the int8 file instead
            save_int8(model, target, metadata, calibration)  # type: ignore[misc]

    _save_or_explain(save, path)


def _refuse(path: Path, message: str) -> ExportError:
    """Remove a file that failed its check (and a sidecar an earlier export left) and say why."""
    path.unlink(missing_ok=True)
    sidecar_path(path).unlink(missing_ok=True)
    return ExportError(f"{message}; nothing was written")


def export_model(
    loaded: LoadedModel,
    path: str | Path | None,
    format: str,
    *,
    quantize: str | None = None,
    data_dir: str | Path | None = None,
    samples: int | None = None,
) -> ExportResult:
    """Write ``loaded``'s model as ``format``, check it on real test images, write its sidecar.

    Args:
        loaded: from :func:`ignite_mnist.inference.trained.load_model`.
        path: output file; default in the run directory, named after the checkpoint
            (``.torchscript.pt``, ``.onnx``, ``.pte``; ``.int8.onnx``, ``.int8.pte`` when quantized).
        format: a name of :data:`ignite_mnist.registry.EXPORT_FORMATS`.
        quantize: ``None`` (float) or a name of :data:`ignite_mnist.registry.QUANTIZATIONS`.
        data_dir: dataset root for the check (and calibration) images; default the run's.
        samples: check on the first ``samples`` test images; default all of them.

    Raises:
        ExportError: unknown format, packages missing, or a file that fails its check (removed).
        ConfigError: a quantization the format cannot take.
        WriteError: the folder cannot be written.
    """
    import torch

    from ignite_mnist.data import load_split_tensors, normalise
    from ignite_mnist.inference.trained import default_output_path

    exporter = exporter_for(format, quantize)
    path = Path(path) if path is not None else default_output_path(
        loaded.path, (f".{quantize}" if quantize else "") + exporter.suffix)
    data_dir = data_dir or loaded.config.data_dir
    images, labels = load_split_tensors(data_dir, loaded.config.dataset, train=False)
    inputs, labels = normalise(images[:samples], loaded.spec.mean, loaded.spec.std), labels[:samples]
    model = loaded.model.cpu().eval()
    with torch.inference_mode():
        eager = torch.from_numpy(in_chunks(lambda batch: model(torch.from_numpy(batch)).numpy(), inputs.numpy()))
    metadata = export_metadata(loaded, exporter, quantize, _accuracy(eager, labels), len(inputs))
    _write(loaded, exporter, path, quantize, json.dumps(metadata), data_dir)
    logits = torch.from_numpy(exporter.run(path, inputs.numpy()))
    result = ExportResult(path, format, quantize, len(inputs), float((logits - eager).abs().max()),
                          float((logits.argmax(1) == eager.argmax(1)).double().mean()), _accuracy(logits, labels),
                          metadata["test_accuracy"], sidecar_path(path))
    if quantize is None and not result.max_abs_difference <= TOLERANCE:
        raise _refuse(path, f"the exported {format} model differs from the eager model by "
                            f"{result.max_abs_difference:.3g} (tolerance {TOLERANCE:g}) on {len(inputs)} test images")
    if quantize is not None and not result.eager_accuracy - result.accuracy <= INT8_MAX_ACCURACY_DROP:
        raise _refuse(path, f"the {quantize} {format} model's test accuracy is {100 * result.accuracy:.2f} %, "
                            f"more than {100 * INT8_MAX_ACCURACY_DROP:.1f} points below the eager model's "
                            f"{100 * result.eager_accuracy:.2f} % on {len(inputs)} test images; export it unquantized")
    _write_sidecar(result, metadata)
    return result


def _write_sidecar(result: ExportResult, metadata: dict[str, Any]) -> None:
    check = {"images": result.samples, "accuracy": result.accuracy, "agreement_with_eager": result.agreement,
             "max_abs_logit_difference": result.max_abs_difference,
             "limit": ({"max_abs_logit_difference": TOLERANCE} if result.quantization is None
                       else {"max_accuracy_drop": INT8_MAX_ACCURACY_DROP})}
    try:
        write_json(result.sidecar, metadata | {"file": result.path.name, "bytes": result.path.stat().st_size,
                                               "check": check})
    except WriteError as error:
        result.path.unlink(missing_ok=True)
        raise error.with_advice("nothing was written; pass --output PATH in a writable folder") from None


#: The names of 0.1's ``export`` that reading a file back took to :mod:`ignite_mnist.inference.exported` in 0.2.
_MOVED_TO_EXPORTED = ("ExportedModel", "is_exported", "load_exported")


def __getattr__(name: str) -> Any:
    return moved_attribute(__name__, "ignite_mnist.inference.exported", _MOVED_TO_EXPORTED, name)
