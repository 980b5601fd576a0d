"""Process and model settings of the fast path that are not about data or handlers.

* :func:`flush_denormals`: treat denormal floats as zero on CPU while training.
  The tutorial MLP's sigmoid/tanh layers and Adam's second moments produce
  denormals, and x86 CPUs compute with them up to 100x slower: measured on the
  2-core benchmark machine, the tutorial loop runs at ~2.8k samples/s without
  and ~9.5k with this setting (``docs/benchmarks.md``). torch provides the switch
  (``torch.set_flush_denormal``); this module only scopes it to a run.
* :func:`prepare_model`: ``torch.compile`` (``--compile``) and channels-last
  weights for CNNs (oneDNN on CPU and cuDNN on GPU both run NHWC convolutions
  and pooling faster: a FastCNN training step ran 1.2-1.8x and a ConvNet step
  1.25-1.6x faster channels-last on the 2-core CPU).

Example:
    >>> with flush_denormals():
    ...     tiny = torch.tensor([1e-40]) * 1.0
    >>> model = prepare_model(torch.nn.Linear(2, 2), "cpu")
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import cast

import torch
from torch import nn

__all__ = ["flush_denormals", "prepare_model", "uses_channels_last"]


@contextlib.contextmanager
def flush_denormals() -> Iterator[bool]:
    """Flush denormal floats to zero inside the block (CPU only); yields whether it is supported.

    The setting is per process (and thread); it is switched off again on exit.
    """
    supported = torch.set_flush_denormal(True)
    try:
        yield supported
    finally:
        if supported:
            torch.set_flush_denormal(False)


def uses_channels_last(model: nn.Module, device: torch.device | str) -> bool:
    """Whether the fast path trains ``model`` channels-last: CNNs on CPU and CUDA.

    Example:
        >>> uses_channels_last(torch.nn.Conv2d(1, 2, 3), "cpu"), uses_channels_last(torch.nn.Linear(2, 2), "cpu")
        (True, False)
    """
    has_conv = any(isinstance(m, nn.Conv2d) for m in model.modules())
    return has_conv and torch.device(device).type in ("cpu", "cuda")


def prepare_model(model: nn.Module, device: torch.device | str, *, compile: bool = False) -> nn.Module:
    """The module the engines should call: channels-last for CNNs, compiled if asked.

    ``model`` itself is converted in place (weights keep their names, so
    checkpoints hold the usual keys); the returned module is ``torch.compile(model)``
    when ``compile`` is set, else ``model``. Save and load ``model``, call the result.

    Example:
        >>> net = torch.nn.Linear(2, 2)
        >>> prepare_model(net, "cpu") is net
        True
    """
    if uses_channels_last(model, device):
        model.to(memory_format=torch.channels_last)
    return cast(nn.Module, torch.compile(model)) if compile else model
