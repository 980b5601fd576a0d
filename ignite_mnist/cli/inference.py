"""The ``evaluate``, ``predict``, ``export`` and ``demo`` subcommands of ``ignite-mnist``.

Each takes a checkpoint file (``.pt``) or a run directory (its best checkpoint,
else its newest one); ``evaluate``, ``predict`` and ``demo`` also take a file ``export`` wrote.
The work is done by :mod:`ignite_mnist.inference.trained` (checkpoints),
:mod:`ignite_mnist.inference.exported` (exported files), :mod:`ignite_mnist.inference.classify`,
:mod:`ignite_mnist.inference.export` and :mod:`ignite_mnist.training.plots`; this module only
parses arguments and prints. Each command imports what its model needs and no more: on an
ONNX file neither torch, torchvision nor Ignite; on a checkpoint torch (and Ignite where it evaluates).

Example:
    $ ignite-mnist evaluate runs/mnist-cnn-20261125-101500
    $ ignite-mnist predict runs/mnist-cnn-20261125-101500 my_seven.png --json
    $ ignite-mnist export runs/mnist-cnn-20261125-101500 --format onnx
    $ ignite-mnist export runs/mnist-cnn-20261125-101500 --format executorch --quantize int8
    $ ignite-mnist predict runs/mnist-cnn-20261125-101500/best_checkpoint_3_accuracy=0.9890.int8.pte my_seven.png
    $ ignite-mnist demo runs/mnist-cnn-20261125-101500 --port 8765
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from ignite_mnist.errors import EXIT_FAILURE, EXIT_OK, ConfigError, WriteError
from ignite_mnist.registry import DEVICES
from ignite_mnist.settings.arguments import PROG, HelpFormatter, OneLineParser

if TYPE_CHECKING:
    from ignite_mnist.evaluation import Evaluation
    from ignite_mnist.inference.classify import Classifier

__all__ = [
    "SUBCOMMAND_PARSERS",
    "build_demo_parser",
    "build_evaluate_parser",
    "build_export_parser",
    "build_predict_parser",
    "demo_command",
    "evaluate_command",
    "export_command",
    "predict_command",
]


def _parser(name: str, description: str, source: str = "a checkpoint file (.pt) or a run directory"
            ) -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog=f"{PROG} {name}", description=description, formatter_class=HelpFormatter
    )
    parser.add_argument("checkpoint", metavar="CKPT", help=source)
    parser.add_argument("--model", default=None, metavar="MODEL",
                        help="for a checkpoint your own trainer wrote (no ignite-mnist settings inside): the network "
                             "its weights belong to, a --model name or package.module:Class "
                             "(default: the checkpoint's)")
    parser.add_argument("--dataset", default=None, metavar="DATASET",
                        help="for such a checkpoint: the dataset it was trained on "
                             "(default: the checkpoint's, else mnist)")
    return parser


def _add_data_dir(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data-dir", default=None, help="dataset root (default: the one the run was trained on)")


_MODEL_OR_EXPORTED = ("a checkpoint file (.pt), a run directory, or a file written by export (.torchscript.pt, "
                      ".onnx, .pte: its metadata says the classes and normalisation)")


def build_evaluate_parser() -> argparse.ArgumentParser:
    """``ignite-mnist evaluate CKPT``: test accuracy, loss, per-class accuracy, confusion matrix."""
    parser = _parser("evaluate", "Evaluate a checkpoint or an exported file on the test set: accuracy, loss, "
                                 "per-class accuracy and the confusion matrix (printed and drawn as a PNG).",
                     _MODEL_OR_EXPORTED)
    parser.add_argument("--data-dir", default=None,
                        help="dataset root (default: the one the run was trained on; for an exported file "
                             "$IGNITE_MNIST_DATA_DIR or ./data)")
    parser.add_argument("--device", default="auto", choices=DEVICES,
                        help="where to evaluate (an exported file runs on its runtime's CPU)")
    parser.add_argument("--plot", metavar="PNG", default=None,
                        help="where to draw the confusion matrix (default: <checkpoint name>.confusion_matrix.png "
                             "in the run directory, <file>.confusion_matrix.png beside an exported file; "
                             "needs matplotlib)")
    parser.add_argument("--json", action="store_true", help="print the results as one JSON object")
    return parser


def build_predict_parser() -> argparse.ArgumentParser:
    """``ignite-mnist predict CKPT IMAGE...``: the class and its probability per image file."""
    parser = _parser("predict", "Classify image files (PNG, JPEG, BMP, GIF, TIFF or PNM; up to 50 million pixels, "
                                "10,000 a side; dark-on-light or light-on-dark): each is cropped to the digit and "
                                "centred the MNIST way before the model sees it. A file that cannot be used is one "
                                "line on stderr; the others are still classified.",
                     _MODEL_OR_EXPORTED)
    parser.add_argument("images", metavar="IMAGE", nargs="+", help="image files")
    parser.add_argument("--json", action="store_true", help="print a JSON list, one object per image")
    return parser


def build_demo_parser() -> argparse.ArgumentParser:
    """``ignite-mnist demo CKPT [--port N]``: the digit pad, a page on 127.0.0.1 to draw digits on."""
    from ignite_mnist.inference.demo import DEFAULT_PORT, HOST

    parser = _parser("demo", f"Serve the digit pad on {HOST} (this machine only): a page where you draw a digit with "
                             f"the mouse or a finger and see every class's probability as you draw. The drawing goes "
                             f"through the same preprocessing as predict. It answers only its own page (Host "
                             f"{HOST}, localhost or [::1] with its port). Ctrl-C or SIGTERM stops it (exit 0).",
                     _MODEL_OR_EXPORTED)
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, metavar="N",
                        help="the port to listen on (0: any free one; the address is printed)")
    return parser


def build_export_parser() -> argparse.ArgumentParser:
    """``ignite-mnist export CKPT --format FORMAT [--quantize int8]``: a deployable file, checked."""
    from ignite_mnist.inference.export import CALIBRATION_SAMPLES, INT8_MAX_ACCURACY_DROP, TOLERANCE
    from ignite_mnist.registry import EXPORT_FORMATS, QUANTIZATIONS

    parser = _parser("export", f"Export the model for deployment, run the file with its own runtime on the whole test "
                               f"set and check it: a float file's logits must equal the model's within {TOLERANCE:g}, "
                               f"an int8 file's accuracy may be at most {100 * INT8_MAX_ACCURACY_DROP:.1f} points "
                               f"lower. The file holds its metadata (classes, normalisation, input, accuracy), and so "
                               f"does <file>.json beside it.")
    parser.add_argument("--format", default="torchscript", choices=EXPORT_FORMATS.names,
                        help="file format (onnx needs the onnx extra, executorch the edge extra)")
    parser.add_argument("--quantize", default=None, choices=QUANTIZATIONS,
                        help=f"post-training static quantization calibrated on {CALIBRATION_SAMPLES} training images "
                             f"(onnx, executorch)")
    parser.add_argument("--output", metavar="PATH", default=None,
                        help="output file (default: <checkpoint name>.torchscript.pt, .onnx or .pte, .int8.onnx or "
                             ".int8.pte, in the run directory)")
    _add_data_dir(parser)
    return parser


def _evaluation(args: argparse.Namespace) -> tuple[Evaluation, Path, Path]:
    """An exported file's evaluation by its runtime (no torch for ONNX), else the checkpoint's in torch; with the
    model's path and where its confusion matrix goes by default."""
    from ignite_mnist.inference.exported import evaluate_exported, is_exported, load_exported

    if is_exported(args.checkpoint):
        _no_checkpoint_flags(args)
        if args.device not in ("auto", "cpu"):
            raise ConfigError("--device", f"{args.checkpoint} is an exported file, run by its runtime on the CPU; "
                                          "leave --device out")
        from ignite_mnist.settings.config import default_data_dir

        exported = load_exported(args.checkpoint)
        return (evaluate_exported(exported, args.data_dir or default_data_dir()), exported.path,
                exported.path.with_name(exported.path.name + ".confusion_matrix.png"))
    from ignite_mnist.inference.trained import default_output_path, evaluate, load_model
    from ignite_mnist.runtime.devices import resolve_device

    device = resolve_device(args.device)
    loaded = load_model(args.checkpoint, device, model=args.model, dataset=args.dataset)
    return (evaluate(loaded, args.data_dir, device), loaded.path,
            default_output_path(loaded.path, ".confusion_matrix.png"))


def evaluate_command(argv: Sequence[str]) -> int:
    args = build_evaluate_parser().parse_args(argv)  # before importing torch: --help answers at once
    from ignite_mnist.training.plots import matplotlib_available, plot_confusion_matrix, save_figure

    result, model_path, default_plot = _evaluation(args)
    plot, drawn = Path(args.plot) if args.plot else default_plot, None
    if matplotlib_available():
        try:
            drawn = save_figure(plot_confusion_matrix(result.confusion_matrix, result.classes), plot)
            note = f"confusion matrix drawn to {plot}"
        except WriteError as error:  # a read-only run directory: the numbers are still the result
            note = f"confusion matrix not drawn: {error}; pass --plot PATH in a writable folder"
    else:
        note = 'confusion matrix not drawn: matplotlib is not installed (pip install "ignite-mnist[plots]")'
    if args.json:
        print(json.dumps(result.to_dict() | {"checkpoint": str(model_path), "plot": str(drawn) if drawn else None}))
    else:
        print(f"checkpoint {model_path}\n{result.format()}\n{note}")
    return EXIT_OK


def _classifier(args: argparse.Namespace) -> Classifier:
    """A checkpoint's model, or an exported file (then ``--model``/``--dataset`` have nothing to say)."""
    from ignite_mnist.inference.exported import is_exported, load_exported

    if not is_exported(args.checkpoint):
        from ignite_mnist.inference.trained import load_model  # torch: only for a checkpoint

        return load_model(args.checkpoint, model=args.model, dataset=args.dataset)
    _no_checkpoint_flags(args)
    return load_exported(args.checkpoint)


def _no_checkpoint_flags(args: argparse.Namespace) -> None:
    """An exported file names its own network and dataset: ``--model`` and ``--dataset`` are usage errors."""
    for flag, given in (("--model", args.model), ("--dataset", args.dataset)):
        if given is not None:
            raise ConfigError(flag, f"{args.checkpoint} is an exported file that names its own; leave {flag} out")


def predict_command(argv: Sequence[str]) -> int:
    args = build_predict_parser().parse_args(argv)
    from ignite_mnist.inference.classify import predict

    predictions = predict(_classifier(args), args.images)
    for failed in (p for p in predictions if p.error is not None):
        print(f"{PROG}: error: {failed.error}", file=sys.stderr)
    if args.json:
        print(json.dumps([p.to_dict() for p in predictions], indent=2))
    else:
        for p in (p for p in predictions if p.error is None):
            print(f"{p.file}: {p.label} (probability {p.probability:.4f})")
    return EXIT_FAILURE if any(p.error is not None for p in predictions) else EXIT_OK


def export_command(argv: Sequence[str]) -> int:
    from ignite_mnist.inference.export import export_model, exporter_for
    from ignite_mnist.inference.trained import load_model

    args = build_export_parser().parse_args(argv)
    exporter_for(args.format, args.quantize)  # a usage error or a missing package, before anything is loaded
    loaded = load_model(args.checkpoint, model=args.model, dataset=args.dataset)
    result = export_model(loaded, args.output, args.format, quantize=args.quantize, data_dir=args.data_dir)
    print(result.format_line())
    return EXIT_OK


def demo_command(argv: Sequence[str]) -> int:
    args = build_demo_parser().parse_args(argv)  # before importing torch: --help answers at once
    if not 0 <= args.port <= 65535:
        raise ConfigError("--port", f"a port is 0 to 65535, got {args.port}")
    from ignite_mnist.inference.demo import serve_pad

    serve_pad(_classifier(args), args.port, source=args.checkpoint)
    return EXIT_OK


#: Subcommand name -> its parser builder (the CLI reference in the docs is generated from these).
SUBCOMMAND_PARSERS = {
    "evaluate": build_evaluate_parser,
    "predict": build_predict_parser,
    "export": build_export_parser,
    "demo": build_demo_parser,
}
