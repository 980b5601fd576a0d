"""The networks: the tutorial's MLP (returning logits), a small ConvNet and the fast recipe's FastCNN.

Their ``--model`` names are listed in :data:`ignite_mnist.registry.MODELS`.

Example:
    >>> import torch
    >>> model = build_model("mlp")
    >>> count_parameters(model)
    102762
    >>> model(torch.zeros(2, 1, 28, 28)).shape
    torch.Size([2, 10])
"""

from __future__ import annotations

import contextlib
import inspect
from collections import OrderedDict
from collections.abc import Callable, Iterator
from typing import Any, cast

import torch
from torch import nn
from torch.nn import functional as F

from ignite_mnist.errors import TRACEBACK_ENV, ConfigError, first_line, wants_traceback
from ignite_mnist.registry import MODELS
from ignite_mnist.warp import affine_grid, pixel_centres

__all__ = [
    "ConvNet",
    "DeepCNN",
    "Deskew",
    "DeskewMLP",
    "FastCNN",
    "QuickCNN",
    "TutorialMLP",
    "build_model",
    "check_model",
    "count_parameters",
    "model_factory",
]


class TutorialMLP(nn.Sequential):
    """The tutorial network, 784 -> 96 tanh -> dropout -> 256 sigmoid -> dropout -> 10.

    Unlike the tutorial it ends in the logits, not a ``Softmax``: the loss
    (``CrossEntropyLoss``) applies the softmax itself, and a second one would
    flatten the gradients. 102,762 parameters.
    """

    def __init__(self, num_classes: int = 10, dropout: float = 0.2) -> None:
        super().__init__(
            nn.Flatten(),
            nn.Linear(28 * 28, 96),
            nn.Tanh(),
            nn.Dropout(dropout),
            nn.Linear(96, 256),
            nn.Sigmoid(),
            nn.Dropout(dropout),
            nn.Linear(256, num_classes),
        )


class Deskew(nn.Module):
    """Straighten each digit: shear it so that its strokes stand upright, with its centre of mass in the middle.

    The classic MNIST deskewing (as in LeCun et al.'s tables), as torch operations on a
    batch, so that it runs inside a model and goes with it into every export. From the
    image's moments, with the pixel values above the image's darkest one (each channel's) as weights:
    the centre of mass ``(cx, cy)``, the vertical variance ``var_y`` and the covariance
    ``cov_xy``; the skew is ``alpha = cov_xy / var_y``. The output pixel at ``(x, y)``
    (coordinates from the centre) is read, bilinearly, from the input at
    ``(x + alpha * y + cx, y + cy)`` with ``F.grid_sample`` (its grid from
    :func:`ignite_mnist.warp.affine_grid`). A blank
    image comes out unchanged. It has no parameters and works on normalised images
    (the darkest value is the background: what comes in from outside is that value).

    Example:
        >>> image = torch.zeros(1, 1, 28, 28)
        >>> for row in range(6, 22):  # a stroke leaning right, 45 degrees, from column 10 to 25
        ...     image[0, 0, row, row + 4] = 1.0
        >>> upright = Deskew()(image)
        >>> columns = torch.arange(28.0)
        >>> [round(float(upright[0, 0, row] @ columns / upright[0, 0, row].sum()), 2) for row in (6, 13, 21)]
        [13.5, 13.5, 13.5]
    """

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        height, width = images.shape[2], images.shape[3]
        # each image's darkest value, as a max-pool: ONNX Runtime's int8 tooling cannot infer ReduceMin's shape
        background = -F.max_pool2d(-images, kernel_size=(height, width))
        ink = images - background
        ys, xs = pixel_centres(height, images), pixel_centres(width, images)
        rows, columns = ink.sum(dim=3), ink.sum(dim=2)  # (N, C, H) and (N, C, W) profiles
        mass = rows.sum(dim=(1, 2)).clamp_min(1e-6)
        cy = (rows * ys).sum(dim=(1, 2)) / mass
        cx = (columns * xs).sum(dim=(1, 2)) / mass
        var_y = ((rows * ys**2).sum(dim=(1, 2)) / mass - cy**2).clamp_min(1e-6)
        xy = ((ink @ xs) * ys).sum(dim=(1, 2)) / mass  # the mean of x * y
        alpha = (xy - cx * cy) / var_y
        ones, zeros = torch.ones_like(alpha), torch.zeros_like(alpha)
        theta = torch.stack((ones, alpha, cx, zeros, ones, cy), dim=1).view(-1, 2, 3)
        grid = affine_grid(theta, height, width)
        return F.grid_sample(ink, grid, mode="bilinear", padding_mode="zeros", align_corners=False) + background


class DeskewMLP(nn.Sequential):
    """The tutorial MLP behind a :class:`Deskew` layer: ``deskew``, then ``mlp`` (:class:`TutorialMLP`, unchanged).

    ``--recipe mlp-best``'s network. The deskewing is part of the model, so a
    checkpoint, ``predict``, the digit pad and every exported file (ONNX, TorchScript,
    ExecuTorch) straighten the digit the same way and give the same answers; callers
    feed it the same normalised 28x28 images as any other model. 102,762 parameters
    (the MLP's; the deskewing has none).

    Example:
        >>> model = DeskewMLP()
        >>> [name for name, _ in model.named_children()], count_parameters(model)
        (['deskew', 'mlp'], 102762)
        >>> model.eval()(torch.zeros(2, 1, 28, 28)).shape
        torch.Size([2, 10])
    """

    def __init__(self, num_classes: int = 10, dropout: float = 0.2) -> None:
        super().__init__(OrderedDict(deskew=Deskew(), mlp=TutorialMLP(num_classes, dropout)))


class ConvNet(nn.Sequential):
    """A small LeNet-style CNN: two 5x5 conv + max-pool stages and a 128-unit head.

    215,370 parameters; about 99 % MNIST test accuracy after a few epochs.
    """

    def __init__(self, num_classes: int = 10, dropout: float = 0.25) -> None:
        super().__init__(
            nn.Conv2d(1, 16, kernel_size=5, padding=2),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(16, 32, kernel_size=5, padding=2),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Flatten(),
            nn.Linear(32 * 7 * 7, 128),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(128, num_classes),
        )


def _conv_pool_bn_relu(in_channels: int, out_channels: int, kernel_size: int) -> list[nn.Module]:
    # pooling before BatchNorm and ReLU gives those two a quarter of the work (max-pool commutes with ReLU)
    return [
        nn.Conv2d(in_channels, out_channels, kernel_size, padding=kernel_size // 2, bias=False),
        nn.MaxPool2d(2),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(),
    ]


class FastCNN(nn.Sequential):
    """The fast recipe's network: two conv + max-pool + BatchNorm stages and a linear head.

    BatchNorm lets it train at a high learning rate, so with a one-cycle schedule
    it passes 99 % MNIST test accuracy within three epochs (see ``docs/benchmarks.md``).
    Each stage pools right after its convolution, so BatchNorm and ReLU run on a
    quarter of the activations: measured on the 2-core CPU, a training step runs
    1.2-1.7x faster than with conv-BatchNorm-ReLU-pool stages.
    About 2.5 M multiply-adds per image; 34,642 parameters.

    Example:
        >>> import torch
        >>> FastCNN()(torch.zeros(2, 1, 28, 28)).shape
        torch.Size([2, 10])
    """

    def __init__(self, num_classes: int = 10) -> None:
        super().__init__(
            *_conv_pool_bn_relu(1, 24, 5),
            *_conv_pool_bn_relu(24, 48, 3),
            nn.Flatten(),
            nn.Linear(48 * 7 * 7, num_classes),
        )


def _conv_bn_relu(in_channels: int, out_channels: int) -> list[nn.Module]:
    return [nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False), nn.BatchNorm2d(out_channels), nn.ReLU()]


def _bn_head(in_features: int, hidden: int, num_classes: int) -> list[nn.Module]:
    # the hidden layer's bias would be cancelled by BatchNorm's mean, so it has none
    return [nn.Flatten(), nn.Linear(in_features, hidden, bias=False), nn.BatchNorm1d(hidden), nn.ReLU(),
            nn.Linear(hidden, num_classes)]


class QuickCNN(nn.Sequential):
    """The one-epoch recipe's network: two 16-channel conv + max-pool + BatchNorm stages, a 256-unit head.

    About 0.77 M multiply-adds per image (FastCNN's 2.5 M), 206,298 parameters,
    most of them in the head. With BatchNorm after every layer it takes Adam at a
    high peak learning rate, so one epoch of a one-cycle schedule reaches 99 %
    (``--recipe one-epoch``; see ``docs/benchmarks.md``).

    Example:
        >>> import torch
        >>> QuickCNN()(torch.zeros(2, 1, 28, 28)).shape
        torch.Size([2, 10])
    """

    def __init__(self, num_classes: int = 10) -> None:
        super().__init__(*_conv_pool_bn_relu(1, 16, 3), *_conv_pool_bn_relu(16, 16, 3),
                         *_bn_head(16 * 7 * 7, 256, num_classes))


class DeepCNN(nn.Sequential):
    """The best recipe's network: two stages of two 3x3 conv + BatchNorm layers (16, then 32 channels),
    each stage pooled once, and a 256-unit head.

    About 5.0 M multiply-adds per image, 420,954 parameters. With augmentation and
    label smoothing it reaches 99.6-99.7 % in ten epochs (``--recipe best``).

    Example:
        >>> import torch
        >>> DeepCNN()(torch.zeros(2, 1, 28, 28)).shape
        torch.Size([2, 10])
    """

    def __init__(self, num_classes: int = 10) -> None:
        super().__init__(*_conv_bn_relu(1, 16), *_conv_pool_bn_relu(16, 16, 3),
                         *_conv_bn_relu(16, 32), *_conv_pool_bn_relu(32, 32, 3),
                         *_bn_head(32 * 7 * 7, 256, num_classes))


def model_factory(name: str) -> Callable[..., Any]:
    """The class (or function) ``--model`` names, imported; the run checks it before reading any data.

    Raises:
        ConfigError: the name is unknown or cannot be imported.
    """
    try:
        return cast(Callable[..., Any], MODELS.load(name))
    except ValueError as error:
        raise ConfigError("--model", str(error)) from None


def build_model(name: str, num_classes: int = 10) -> nn.Module:
    """A freshly initialised model by its ``--model`` name: one of :data:`ignite_mnist.registry.MODELS`,
    or ``package.module:Class`` for your own.

    Your own class (or function) is called with ``num_classes=N`` when it takes a
    ``num_classes`` argument, else with no arguments; it must return a ``torch.nn.Module``
    with parameters that maps ``(N, 1, 28, 28)`` images to ``(N, classes)`` floating-point
    logits, which a probe batch checks before anything trains. What goes wrong in your
    code is one line naming it; ``IGNITE_MNIST_TRACEBACK=1`` shows the whole traceback.

    Raises:
        ConfigError: the name is unknown, cannot be imported, or does not build a fitting module.

    Example:
        >>> type(build_model("cnn")).__name__
        'ConvNet'
        >>> build_model("torch.nn:Identity")
        Traceback (most recent call last):
        ...
        ignite_mnist.errors.ConfigError: --model: torch.nn:Identity has no parameters to train
        >>> build_model("no_such_package:Net")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        ignite_mnist.errors.ConfigError: --model: cannot import no_such_package (ModuleNotFoundError: ...)
    """
    factory = model_factory(name)
    if name in MODELS:
        return cast(nn.Module, factory(num_classes=num_classes))
    if not callable(factory):
        raise ConfigError("--model", f"{name} is a {type(factory).__name__}, not a class")
    with _your_code(name, "while being built"):
        takes_classes = "num_classes" in inspect.signature(factory).parameters
        model = factory(num_classes=num_classes) if takes_classes else factory()
    if not isinstance(model, nn.Module):
        raise ConfigError("--model", f"{name} built a {type(model).__name__}, not a torch.nn.Module")
    check_model(model, name, num_classes)
    return model


@contextlib.contextmanager
def _your_code(name: str, when: str) -> Iterator[None]:
    """An error raised by your own model's code: one line naming it (the traceback with ``$IGNITE_MNIST_TRACEBACK``)."""
    try:
        yield
    except Exception as error:  # the user's code can raise anything; it is theirs to debug
        if wants_traceback():
            raise
        raise ConfigError("--model", f"{name} raised {type(error).__name__} {when}: {first_line(error)} "
                                     f"(set {TRACEBACK_ENV}=1 for the traceback)") from None


def check_model(model: nn.Module, name: str, num_classes: int) -> None:
    """Run a probe batch of two blank images through your model and check what comes out: a floating-point
    ``(N, classes)`` tensor that depends on the model's parameters.

    Raises:
        ConfigError: one line naming the model and what is wrong, e.g. "its output is (N, 9), expected (N, 10)".

    Example:
        >>> check_model(nn.Sequential(nn.Flatten(), nn.Linear(784, 9)), "my.nets:Net", 10)
        Traceback (most recent call last):
        ...
        ignite_mnist.errors.ConfigError: --model: my.nets:Net: its output is (N, 9), expected (N, 10) logits \
for (N, 1, 28, 28) images
    """
    if not any(p.requires_grad for p in model.parameters()):
        raise ConfigError("--model", f"{name} has no parameters to train")
    was_training = model.training
    with _your_code(name, "on a probe batch of (2, 1, 28, 28) images"):
        output = model.eval()(torch.zeros(2, 1, 28, 28))
    model.train(was_training)
    expected = f"expected (N, {num_classes}) logits for (N, 1, 28, 28) images"
    if not isinstance(output, torch.Tensor):
        problem = f"its output is a {type(output).__name__}, not a tensor; {expected}"
    elif output.dim() == 0:
        problem = f"its output is a scalar, {expected}"
    elif output.shape[0] != 2:
        problem = f"its output is {tuple(output.shape)} for a batch of 2, {expected}"
    elif output.dim() != 2 or output.shape[1] != num_classes:
        problem = f"its output is ({', '.join(['N', *map(str, output.shape[1:])])}), {expected}"
    elif not output.is_floating_point():
        problem = f"its output is {output.dtype}, expected floating-point logits"
    elif not output.requires_grad:
        problem = "its output does not depend on its parameters (no gradient flows back)"
    else:
        return
    raise ConfigError("--model", f"{name}: {problem}")


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
