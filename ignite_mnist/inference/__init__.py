"""Using a trained model: load it, evaluate it, classify images, export it, serve the digit pad.

* :mod:`~ignite_mnist.inference.trained`: a checkpoint or run directory loaded, evaluated on a test set,
  asked about image files;
* :mod:`~ignite_mnist.inference.export`: ONNX, TorchScript and ExecuTorch files, each carrying its own metadata,
  checked before any runtime reads them (:mod:`~ignite_mnist.inference.executorch` holds ExecuTorch);
* :mod:`~ignite_mnist.inference.demo`: the digit pad, a page on 127.0.0.1.

Nothing is imported here, so a command that only reads an exported file loads what it needs and no more.
``ignite_mnist.inference.load_model`` and the other names of the 0.1 module still answer, with a
``DeprecationWarning``.
"""

from typing import Any

from ignite_mnist._moved import moved_attribute

_OLD_NAMES = ("Classifier", "EVAL_BATCH_SIZE", "LoadedModel", "Prediction", "default_output_path", "evaluate",
              "load_model", "predict", "predict_tensors")


def __getattr__(name: str) -> Any:
    return moved_attribute(__name__, "ignite_mnist.inference.trained", _OLD_NAMES, name)
