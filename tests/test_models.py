import torch

from ignite_mnist.models import ConvNet, TutorialMLP, build_model, count_parameters


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
