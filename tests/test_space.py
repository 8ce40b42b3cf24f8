import random

import pytest

from snaketune.core.errors import ConfigError
from snaketune.search.space import Space, parse_hyperparameter


def test_float_step_reaches_the_max_the_user_wrote():
    # Keras Tuner's Float(0, 0.5, step=0.1) never yields 0.5 (0.5 // 0.1 == 4.0)
    hp = parse_hyperparameter("dropout", {"type": "float", "min": 0.0, "max": 0.5, "step": 0.1})
    assert hp.grid_values() == [0.0, 0.1, 0.2, 0.3, 0.4, 0.5]
    assert hp.contains(0.5) and hp.contains(0.30000000000000004)
    samples = {hp.sample(random.Random(i)) for i in range(300)}
    assert samples == set(hp.grid_values())


def test_int_linear_and_log_steps():
    assert parse_hyperparameter("u", {"type": "int", "min": 32, "max": 128, "step": 32}).grid_values() == [
        32,
        64,
        96,
        128,
    ]
    log = parse_hyperparameter("u", {"type": "int", "min": 16, "max": 256, "step": 2, "sampling": "log"})
    assert log.grid_values() == [16, 32, 64, 128, 256]


def test_log_float_samples_stay_in_range_and_spread_over_decades():
    hp = parse_hyperparameter("lr", {"type": "float", "min": 1e-4, "max": 1e-1, "sampling": "log"})
    samples = [hp.sample(random.Random(i)) for i in range(500)]
    assert all(1e-4 <= s <= 1e-1 for s in samples)
    assert sum(s < 1e-3 for s in samples) > 100  # a third of the decades, not 1 %


def test_defaults_follow_keras_tuner():
    space = Space.from_config(
        {
            "a": {"type": "int", "min": 2, "max": 5},
            "b": {"type": "float", "min": 0.5, "max": 1.0},
            "c": {"type": "choice", "values": ["x", "y"]},
            "d": {"type": "boolean"},
            "e": 7,
        }
    )
    assert space.defaults() == {"a": 2, "b": 0.5, "c": "x", "d": False, "e": 7}


def test_conditional_hyperparameters_are_active_only_under_their_parent():
    space = Space.from_config(
        {
            "deep": {"type": "boolean"},
            "extra": {"type": "int", "min": 1, "max": 3, "conditions": [{"name": "deep", "values": [True]}]},
        }
    )
    assert space.complete({"deep": False}) == {"deep": False}
    assert space.complete({"deep": True}) == {"deep": True, "extra": 1}


def test_json_round_trip():
    space = Space.from_config(
        {
            "lr": {"type": "float", "min": 1e-3, "max": 1e-1, "sampling": "log"},
            "act": {"type": "choice", "values": ["relu", "tanh"]},
        }
    )
    again = Space.from_json(space.to_json())
    assert again.names == space.names and again["lr"] == space["lr"] and again["act"] == space["act"]


@pytest.mark.parametrize(
    "spec, needle",
    [
        ({"type": "choice", "values": []}, "space.h.values"),
        ({"type": "int", "min": 5, "max": 1}, "min (5) is greater than max (1)"),
        ({"type": "float", "min": 0.0, "max": 1.0, "sampling": "log"}, "log sampling needs min > 0"),
        ({"type": "float", "min": 0, "max": 1, "step": -0.1}, "space.h.step"),
        ({"type": "int", "min": 0.5, "max": 3}, "space.h.min: expected an integer"),
        ({"type": "real", "min": 0, "max": 1}, "space.h.type"),
        ({"type": "int", "min": 0, "max": 3, "stepp": 1}, "unknown key(s) ['stepp']"),
        ({"type": "choice", "values": [1, 2], "default": 3}, "space.h.default"),
        ({"type": "int", "min": "a", "max": 3}, "space.h.min: expected a number"),
    ],
)
def test_bad_hyperparameters_name_the_key(spec, needle):
    with pytest.raises(ConfigError) as error:
        parse_hyperparameter("h", spec)
    assert needle in str(error.value)


def test_reserved_names_are_refused():
    with pytest.raises(ConfigError, match="space.status"):
        parse_hyperparameter("status", {"type": "boolean"})
