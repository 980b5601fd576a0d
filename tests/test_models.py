import pytest
import torch
from torch.nn import functional as F

from ignite_mnist.models import ConvNet, Deskew, DeskewMLP, TutorialMLP, build_model, count_parameters
from ignite_mnist.warp import affine_grid


def test_tutorial_mlp_is_the_tutorial_network():
    model = TutorialMLP()
    assert count_parameters(model) == 102_762
    layers = [type(m).__name__ for m in model]
    assert layers == ["Flatten", "Linear", "Tanh", "Dropout", "Linear", "Sigmoid", "Dropout", "Linear"]
    assert [m.p for m in model if isinstance(m, torch.nn.Dropout)] == [0.2, 0.2]


def test_models_return_logits_not_probabilities():
    torch.manual_seed(0)
    for model in (TutorialMLP().eval(), ConvNet().eval()):
        out = model(torch.randn(4, 1, 28, 28))
        assert out.shape == (4, 10)
        assert not torch.allclose(out.sum(dim=1), torch.ones(4))
        assert (out < 0).any()


def test_build_model_by_name():
    assert isinstance(build_model("mlp"), TutorialMLP)
    assert isinstance(build_model("cnn"), ConvNet)


def test_the_deskewing_mlp_is_the_tutorial_network_behind_a_layer_without_parameters():
    model = build_model("mlp-deskew")
    assert isinstance(model, DeskewMLP) and isinstance(model.deskew, Deskew) and isinstance(model.mlp, TutorialMLP)
    assert list(model.deskew.parameters()) == [] and count_parameters(model) == 102_762
    assert [type(m).__name__ for m in model.mlp] == [type(m).__name__ for m in TutorialMLP()]


def _slanted_bar(shear: float) -> torch.Tensor:
    """A bar from row 5 to 22, 3 pixels wide, its centre moving ``shear`` pixels a row (0: upright), in 0-1."""
    rows = torch.arange(28.0).view(28, 1)
    centres = 13.5 + shear * (rows - 13.5)
    bar = (2.0 - (torch.arange(28.0) - centres).abs()).clamp(0, 1)
    bar[:5], bar[23:] = 0, 0
    return bar.view(1, 1, 28, 28)


def _column_centres(image: torch.Tensor) -> torch.Tensor:
    rows = image[0, 0, 7:21]
    return rows @ torch.arange(28.0) / rows.sum(1)


@pytest.mark.parametrize("shear", [-0.4, 0.25, 0.5])
def test_deskew_stands_a_slanted_stroke_upright_on_normalised_images(shear: float):
    slanted = _slanted_bar(shear)
    assert _column_centres(slanted).max() - _column_centres(slanted).min() > 3  # it leans
    mean, std = 0.1307, 0.3081
    upright = Deskew()((slanted - mean) / std) * std + mean  # fed normalised, as the models are
    centres = _column_centres(upright)
    assert centres.max() - centres.min() < 0.2
    assert torch.allclose(centres, torch.full_like(centres, 13.5), atol=0.2)
    assert torch.allclose(upright[..., :4, :], torch.zeros(1, 1, 4, 28), atol=1e-6)  # the background stays


def test_deskew_leaves_blank_and_upright_centred_images_as_they_are():
    blank = torch.full((2, 1, 28, 28), -0.4242)
    assert torch.equal(Deskew()(blank), blank)
    upright = _slanted_bar(0.0)
    assert torch.allclose(Deskew()(upright), upright, atol=1e-5)


def test_affine_grid_is_torchs_on_random_transforms():
    torch.manual_seed(0)
    theta = torch.randn(16, 2, 3)
    for height, width in ((28, 28), (5, 9)):
        expected = F.affine_grid(theta, [16, 1, height, width], align_corners=False)
        assert torch.allclose(affine_grid(theta, height, width), expected, atol=1e-5)
