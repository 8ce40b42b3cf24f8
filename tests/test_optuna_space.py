"""The search space in Optuna's terms: each type, step, log sampling and condition mapped exactly."""

import optuna
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

from snaketune.search.optuna_space import distribution, from_optuna, frozen_trial, suggest, to_optuna
from snaketune.search.space import Space

SPACE = Space.from_config(
    {
        "units": {"type": "int", "min": 32, "max": 512, "step": 32},
        "layers": {"type": "int", "min": 1, "max": 3},
        "width": {"type": "int", "min": 8, "max": 1024, "sampling": "log"},
        "filters": {"type": "int", "min": 16, "max": 128, "step": 2, "sampling": "log"},
        "dropout": {"type": "float", "min": 0.0, "max": 0.5, "step": 0.1},
        "odd": {"type": "float", "min": 0.0, "max": 1.0, "step": 0.3},
        "learning_rate": {"type": "float", "min": 1e-4, "max": 1e-1, "sampling": "log"},
        "momentum": {"type": "float", "min": 0.5, "max": 0.99},
        "activation": {"type": "choice", "values": ["relu", "tanh"]},
        "batch_size": {"type": "choice", "values": [32, 64, 128]},
        "batchnorm": {"type": "boolean"},
        "optimizer": {"type": "choice", "values": ["adam", "sgd"], "default": "adam"},
        "beta": {"type": "float", "min": 0.8, "max": 0.99, "conditions": [{"name": "optimizer", "values": ["adam"]}]},
        "seed_layer": 7,
    }
)


@pytest.mark.parametrize(
    "name,expected",
    [
        ("units", IntDistribution(32, 512, step=32)),
        ("layers", IntDistribution(1, 3)),
        ("width", IntDistribution(8, 1024, log=True)),
        ("filters", IntDistribution(0, 3)),  # the rungs 16, 32, 64, 128
        ("dropout", FloatDistribution(0.0, 0.5, step=0.1)),
        ("odd", FloatDistribution(0.0, 0.9, step=0.3)),  # the last rung, a whole number of steps
        ("learning_rate", FloatDistribution(1e-4, 1e-1, log=True)),
        ("momentum", FloatDistribution(0.5, 0.99)),
        ("activation", CategoricalDistribution(["relu", "tanh"])),
        ("batch_size", CategoricalDistribution([32, 64, 128])),
        ("batchnorm", CategoricalDistribution([False, True])),
        ("seed_layer", None),
    ],
)
def test_each_type_is_optunas_own_distribution(name, expected):
    assert distribution(SPACE[name]) == expected


def test_a_log_ladder_goes_by_its_rung_and_comes_back_exactly():
    hp = SPACE["filters"]
    assert [from_optuna(hp, k) for k in range(4)] == hp.grid_values() == [16, 32, 64, 128]
    assert [to_optuna(hp, v) for v in hp.grid_values()] == [0, 1, 2, 3]


def test_every_value_optuna_samples_lies_in_the_space_and_conditions_hold():
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    seen_sgd = False
    for _ in range(60):
        values = suggest(study.ask(), SPACE)
        assert all(SPACE[k].contains(v) for k, v in values.items()), values
        assert values["seed_layer"] == 7
        assert ("beta" in values) == (values["optimizer"] == "adam")
        seen_sgd |= values["optimizer"] == "sgd"
        assert values["dropout"] in SPACE["dropout"].grid_values()  # canonical, not 0.30000000000000004
    assert seen_sgd


def test_a_finished_trial_is_recorded_with_its_active_parameters_only():
    values = SPACE.complete({"optimizer": "sgd", "filters": 64})
    trial = frozen_trial(SPACE, values, 0.9)
    assert "beta" not in trial.params and "seed_layer" not in trial.params
    assert trial.params["filters"] == 2 and trial.value == 0.9
    failed = frozen_trial(SPACE, values, None, failed=True)
    assert failed.state == optuna.trial.TrialState.FAIL and failed.value is None
