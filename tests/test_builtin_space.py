"""A built-in model's search space without TensorFlow is the one Keras Tuner finds by building
the model (snaketune.search.kt_space.discover): same hyperparameters, order, ranges and defaults, so
the same space.json and the same trial ids."""

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from snaketune.core.errors import ConfigError
from snaketune.models.builtin_space import discover
from snaketune.search.space import Space

ROOT = Path(__file__).resolve().parents[1]


def _yaml_space(path):
    return yaml.safe_load((ROOT / path).read_text())["space"]


DECLARED = {
    "mlp": [
        _yaml_space("config/config.yaml"),
        {},
        {"batch_size": {"type": "choice", "values": [32, 64]}},
        # another type, a fixed value, a bare value, no default, no step, a log int
        {
            "units": {"type": "choice", "values": [64, 128]},
            "dropout": 0.1,
            "activation": "tanh",
            "learning_rate": {"type": "float", "min": 0.001, "max": 0.01},
            "num_layers": {"type": "int", "min": 1, "max": 4, "sampling": "log"},
        },
        {
            "dropout": {"type": "float", "min": 0.0, "max": 1.0, "step": 0.3},
            "num_layers": {"type": "fixed", "value": 1},
        },
    ],
    "cnn": [
        _yaml_space("examples/mnist_cnn.yaml"),
        {},
        {"activation": {"type": "choice", "values": ["elu", "relu"], "default": "elu"}, "filters": 16},
    ],
}


def _keras_tuner_way(model_type, declared):
    from snaketune.trial.model_check import _discover

    return _discover({"type": model_type}, declared, None)


@pytest.mark.parametrize("model_type,declared", [(m, d) for m, spaces in DECLARED.items() for d in spaces])
def test_the_same_space_as_keras_tuner_finds_by_building_the_model(model_type, declared):
    expected = _keras_tuner_way(model_type, declared)
    found = discover(model_type, Space.from_config(declared))
    assert found.to_json() == expected.to_json()


def test_a_declared_name_the_model_never_asks_for_is_refused_the_same_way():
    declared = {"units": 64, "kernel_size": {"type": "int", "min": 3, "max": 5}}
    with pytest.raises(ConfigError) as keras_tuner_way:
        _keras_tuner_way("mlp", declared)
    with pytest.raises(ConfigError) as without_tensorflow:
        discover("mlp", Space.from_config(declared))
    assert str(without_tensorflow.value) == str(keras_tuner_way.value)
    assert "space.kernel_size" in str(without_tensorflow.value)


def test_conditional_declarations_are_left_to_keras_tuner():
    declared = {
        "num_layers": {"type": "int", "min": 1, "max": 3},
        "units": {
            "type": "int",
            "min": 32,
            "max": 64,
            "step": 32,
            "conditions": [{"name": "num_layers", "values": [2, 3]}],
        },
    }
    assert discover("mlp", Space.from_config(declared)) is None


def test_no_tensorflow_is_imported():
    code = (
        "import sys, yaml; from snaketune.models.builtin_space import discover; "
        "from snaketune.search.space import Space; "
        "discover('mlp', Space.from_config(yaml.safe_load(open('config/config.yaml'))['space'])); "
        "discover('cnn', Space.from_config({})); "
        "print(sorted(m for m in ('tensorflow', 'keras', 'keras_tuner') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
