"""Data augmentation as tensor operations on a whole batch (``--augment``).

Each image of the batch gets its own small random rotation and shift, drawn from
torch's global generator on the batch's device: the generator state that
checkpoints already save (``RNGStates``), so a resumed run draws the same
augmentations as an uninterrupted one. The warp is ``grid_sample`` on the device
(its grid from :func:`ignite_mnist.warp.affine_grid`, which is what ``F.affine_grid``
makes, in half the time on a CPU), with no per-sample Python and no PIL.

torchvision's ``RandomAffine`` draws one set of parameters per call, i.e. the same
warp for every image of a batch, which is why this module exists.

Example:
    >>> images = torch.zeros(8, 1, 28, 28)
    >>> random_shift_rotate(images).shape
    torch.Size([8, 1, 28, 28])
"""

from __future__ import annotations

import math

import torch
from torch.nn import functional as F

from ignite_mnist.warp import affine_grid

__all__ = ["random_shift_rotate"]


def random_shift_rotate(images: torch.Tensor, max_shift: float = 2.0, max_degrees: float = 10.0) -> torch.Tensor:
    """Rotate each image by up to ``max_degrees`` and shift it by up to ``max_shift`` pixels.

    Args:
        images: a float batch ``(N, C, H, W)`` (already normalised; the border value is
            repeated into the uncovered area, which for MNIST is the background).
        max_shift: the largest shift along each axis, in pixels.
        max_degrees: the largest rotation either way, in degrees.

    Returns:
        A new batch of the same shape, dtype and device.

    Example:
        >>> torch.manual_seed(0) and None
        >>> out = random_shift_rotate(torch.randn(4, 1, 28, 28), max_shift=0, max_degrees=0)
        >>> out.shape
        torch.Size([4, 1, 28, 28])
    """
    n, _, height, width = images.shape
    uniform = torch.rand(n, 3, device=images.device, dtype=images.dtype).mul_(2).sub_(1)  # in [-1, 1)
    angle = uniform[:, 0] * math.radians(max_degrees)
    cos, sin = angle.cos(), angle.sin()
    # affine_grid works in [-1, 1] coordinates: one pixel is 2 / size
    shift_x = uniform[:, 1] * (2 * max_shift / width)
    shift_y = uniform[:, 2] * (2 * max_shift / height)
    theta = torch.stack((cos, -sin, shift_x, sin, cos, shift_y), dim=1).view(n, 2, 3)
    grid = affine_grid(theta, height, width)
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="border", align_corners=False)
