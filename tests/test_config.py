import dataclasses

import pytest

from ignite_mnist.errors import ConfigError
from ignite_mnist.settings.config import TrainConfig, flag_name


def test_defaults_are_the_tutorial_recipe():
    config = TrainConfig()
    assert (config.model, config.epochs, config.batch_size, config.lr, config.optimizer, config.seed) == (
        "mlp", 10, 32, 1e-3, "adam", 0)
    assert config.val_size == 5000 and config.output_dir == "runs"


def test_data_dir_default_follows_the_environment(monkeypatch):
    monkeypatch.setenv("IGNITE_MNIST_DATA_DIR", "/somewhere/data")
    assert TrainConfig().data_dir == "/somewhere/data"
    monkeypatch.delenv("IGNITE_MNIST_DATA_DIR")
    assert TrainConfig().data_dir == "./data"


@pytest.mark.parametrize(
    ("changes", "flag"),
    [
        ({"epochs": 0}, "--epochs"),
        ({"batch_size": -1}, "--batch-size"),
        ({"lr": 0.0}, "--lr"),
        ({"model": "resnet"}, "--model"),
        ({"dataset": "cifar"}, "--dataset"),
        ({"momentum": 1.5}, "--momentum"),
        ({"val_size": 0}, "--val-size"),
        ({"run_name": "a/b"}, "--run-name"),
    ],
)
def test_validate_names_the_flag(changes, flag):
    with pytest.raises(ConfigError, match=f"^{flag}: ") as info:
        dataclasses.replace(TrainConfig(), **changes).validate()
    assert info.value.flag == flag


def test_dict_round_trip_and_unknown_keys():
    config = TrainConfig(model="cnn", epochs=3)
    assert TrainConfig.from_dict(config.to_dict()) == config
    with pytest.raises(ConfigError, match="unknown setting"):
        TrainConfig.from_dict({**config.to_dict(), "bogus": 1})


def test_flag_name():
    assert flag_name("batch_size") == "--batch-size"
