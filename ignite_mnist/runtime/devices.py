"""Where a run computes and in which precision: ``--device`` and ``--amp``.

Example:
    >>> resolve_device("cpu")
    device(type='cpu')
    >>> amp_dtype("cpu") in (torch.bfloat16, None)
    True
"""

from __future__ import annotations

import torch

from ignite_mnist.errors import ConfigError

__all__ = ["amp_dtype", "cpu_has_bfloat16", "resolve_device"]


def resolve_device(name: str) -> torch.device:
    """``auto`` -> ``cuda`` when available, else ``cpu``; ``cuda`` without a GPU is an error.

    Raises:
        ConfigError: ``cuda`` was asked for and there is none.
    """
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("--device", "cuda was requested but no CUDA device is available; use --device cpu")
    return torch.device(name)


def cpu_has_bfloat16() -> bool:
    """Whether this CPU computes bfloat16 natively (AVX512-BF16 or AMX), as oneDNN reports it.

    Example:
        >>> isinstance(cpu_has_bfloat16(), bool)
        True
    """
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):  # a torch built without oneDNN
        return False


def amp_dtype(device: torch.device | str) -> torch.dtype | None:
    """The autocast dtype ``--amp`` uses on ``device``; ``None`` where autocast would only slow training.

    On CPU: bfloat16 where the CPU has bfloat16 instructions, else ``None`` (float32).
    Without them torch emulates bfloat16: on the AVX2-only benchmark machine a
    FastCNN step ran 3.5x slower under bfloat16 autocast (336 vs 1,200 samples/s).
    On GPUs: bfloat16 where supported, float16 (with a ``GradScaler``) on older ones.
    """
    device = torch.device(device)
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if device.type == "cpu":
        return torch.bfloat16 if cpu_has_bfloat16() else None
    return torch.bfloat16
