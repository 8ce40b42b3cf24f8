"""Search spaces whose hyperparameters depend on the values of others (a loop over
`range(hp.Int(...))`), found in full before the first trial and searched by every strategy
only where the model uses them (imports TensorFlow)."""

import json

import pandas as pd
import pytest
from conftest import ROOT

from snaketune.models import load_user_object
from snaketune.report.aggregate import collect
from snaketune.report.analysis import frozen_trials
from snaketune.search.kt_space import discover
from snaketune.search.objective import Objective
from snaketune.search.space import Space
from snaketune.search.strategies import Finished, make
from snaketune.trial.train import run_trial

MODELS = ROOT / "tests" / "models" / "dynamic_layers.py"
GUIDE = ROOT / "examples" / "keras_tuner_guide.py"  # the guide's model that tunes the number of layers


def space_of(function, file=MODELS):
    return discover(load_user_object(f"{file}:{function}"), Space.from_config({}))


@pytest.fixture(scope="module")
def layers_space():
    return space_of("build_model", GUIDE)


def conditions(space):
    return {p.name: [(c.name, list(c.values)) for c in p.conditions] for p in space}


def test_every_layers_units_is_found_and_gated_by_the_number_of_layers(layers_space):
    assert conditions(layers_space) == {
        "num_layers": [],
        "units_0": [],
        "activation": [],
        "dropout": [],
        "lr": [],
        "units_1": [("num_layers", [2, 3])],
        "units_2": [("num_layers", [3])],
    }
    # space.json says so
    written = {p["name"]: p.get("conditions", []) for p in json.loads(layers_space.to_json())}
    assert written["units_2"] == [{"name": "num_layers", "values": [3]}]


def test_nested_cases_are_found_under_their_switch():
    found = conditions(space_of("nested"))
    assert found["depth"] == [("deep", [True])]
    assert found["width_2"] == [("depth", [3])] and found["width_1"] == [("depth", [2, 3])]


@pytest.mark.parametrize("name", ["random", "bayesian", "tpe", "gp"])
def test_every_strategy_searches_each_layer_only_where_it_exists(layers_space, name):
    config = {"trials": 24, "batch": 4, "seed": 1}
    config.update(
        {"num_initial_points": 4} if name == "bayesian" else {} if name == "random" else {"n_startup_trials": 4}
    )
    strategy = make(name, config, Objective("val_accuracy", "max"))
    history, proposals = [], []
    for round_ in range(4 if name != "random" else 1):
        batch = [p.values for p in strategy.propose(layers_space, history, 24 if name == "random" else 4)]
        for values in batch:
            # a made-up objective that rewards depth, so that the model-based ones go deep
            score = 0.5 + 0.1 * values["num_layers"] + values.get("units_2", 0) / 1000
            history.append(Finished(f"t{len(history)}", values, {}, round_, "completed", score))
        proposals += batch
    for values in proposals:
        # no value for a layer the configuration does not have, and one for each it has
        assert [f"units_{i}" in values for i in range(3)] == [i < values["num_layers"] for i in range(3)], values
    assert {v["units_2"] for v in proposals if "units_2" in v} != set(), "units_2 is never searched"


def test_a_trial_records_what_its_model_never_asked_for(tiny_data, tmp_path):
    settings = {
        "model": {"build_model": f"{MODELS}:asks_less"},
        "epochs": 1,
        "patience": None,
        "seed": 0,
        "objective": {"name": "val_accuracy", "direction": "max"},
    }
    values = {"first": True, "second": True, "width": 16}
    record = run_trial(
        study="s",
        trial_id="abcdef012345",
        values=values,
        settings=settings,
        data_dir=tiny_data,
        out_dir=tmp_path / "abcdef012345",
    )
    assert record["status"] == "completed", record["error"]
    assert record["unused"] == "width"
    space = space_of("asks_less")
    assert [p.conditions for p in space] == [(), (), ()]  # two switches together: no single gate
    table = collect(
        "random",
        [(0, None, "abcdef012345", values, {}, "all")],
        metrics_files=[str(tmp_path / "abcdef012345" / "metrics.csv")],
        space=space,
    )
    assert pd.isna(table.loc[0, "width"]) and table.loc[0, "first"] == True  # noqa: E712
    (trial,) = frozen_trials(table, space, Objective("val_accuracy", "max"))
    assert set(trial.params) == {"first", "second"}


def test_values_at_which_the_model_does_not_build_are_passed_over():
    # a trial there fails, as in Keras Tuner; the study is not refused for it
    assert conditions(space_of("pooled")) == {"blocks": []}


def test_a_new_way_of_discovering_discovers_a_users_space_anew(monkeypatch):
    from snaketune.study.plan import Plan

    def key(model):
        plan = Plan.__new__(Plan)
        plan.settings = {"model": model, "data": {}}
        plan.study = type("S", (), {"config": {"space": {}}})()
        return plan.space_key

    user, builtin = {"build_model": "m.py:f"}, {"type": "mlp"}
    before = key(user), key(builtin)
    monkeypatch.setattr(Plan, "DISCOVERY", Plan.DISCOVERY + 1)
    assert key(user) != before[0] and key(builtin) == before[1]
