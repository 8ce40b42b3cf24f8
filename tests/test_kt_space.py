"""Discovering a build_model(hp)'s search space the way Keras Tuner does (imports TensorFlow)."""

import pytest

from snaketune.core.errors import ConfigError
from snaketune.models import load_user_object, resolve
from snaketune.search.kt_space import discover, to_keras_tuner
from snaketune.search.space import Space


def test_builtin_mlp_declares_the_key_hyperparameters():
    space = discover(resolve({"type": "mlp"}).build, Space([]))
    assert set(space.names) == {"activation", "num_layers", "units", "dropout", "learning_rate"}
    assert space["learning_rate"].sampling == "log"


def test_yaml_narrows_fixes_and_adds_fit_arguments():
    declared = Space.from_config(
        {
            "units": {"type": "choice", "values": [64, 128]},
            "num_layers": 1,
            "batch_size": {"type": "choice", "values": [32, 64]},
        }
    )
    space = discover(resolve({"type": "mlp"}).build, declared)
    assert space["units"].type == "choice" and list(space["units"].values) == [64, 128]
    assert space["num_layers"].type == "fixed"
    assert "batch_size" in space and "dropout" in space


def test_conditional_hyperparameters_of_a_users_function_are_found(example_build_model):
    space = discover(load_user_object(f"{example_build_model}:build_model"), Space([]))
    assert set(space.names) == {"units", "extra_layer", "extra_units", "learning_rate"}
    assert [c.name for c in space["extra_units"].conditions] == ["extra_layer"]
    assert space.complete({"extra_layer": False}).get("extra_units") is None


def test_a_yaml_name_the_model_never_asks_for_is_an_error():
    with pytest.raises(ConfigError, match="space.unitz: build_model never asks for 'unitz'"):
        discover(resolve({"type": "mlp"}).build, Space.from_config({"unitz": {"type": "int", "min": 1, "max": 4}}))


@pytest.mark.parametrize(
    "function, needle",
    [
        ("raises", "build_model raised RuntimeError"),
        ("not_a_model", "must return a keras.Model, got str"),
    ],
)
def test_a_broken_build_model_is_a_config_error(function, needle):
    path = __import__("pathlib").Path(__file__).parent / "models" / "broken.py"
    with pytest.raises(ConfigError, match=needle):
        discover(load_user_object(f"{path}:{function}"), Space([]))


def test_round_trip_through_keras_tuner_keeps_each_hyperparameter():
    from snaketune.search.kt_space import from_keras_tuner

    space = Space.from_config(
        {
            "lr": {"type": "float", "min": 1e-4, "max": 1e-2, "sampling": "log", "default": 1e-3},
            "units": {"type": "int", "min": 32, "max": 128, "step": 32},
            "act": {"type": "choice", "values": ["relu", "tanh"]},
            "bn": {"type": "boolean"},
            "drop": {"type": "float", "min": 0.0, "max": 0.5, "step": 0.1},
            "filters": {"type": "float", "min": 8.0, "max": 64.0, "step": 2, "sampling": "log"},
            "layers": 2,
        }
    )
    again = from_keras_tuner(to_keras_tuner(space))
    assert again.names == space.names
    for name in space.names:
        assert again[name] == space[name], name
