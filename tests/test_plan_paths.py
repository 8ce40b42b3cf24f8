"""The plan owns every path under results/<study>/ (snaketune/core/layout.py, through Plan.paths)
and the traversal of series, rounds and tables that the rules' input and params functions ask
for (rules/common.smk). Fast: no Snakemake run, no TensorFlow; the tiny study's space is the one
its space job discovers (the built-in MLP's, found without Keras)."""

import copy
import json
from pathlib import Path

import pytest
from conftest import ROOT, TINY

from snaketune.core.layout import PLOTS, Layout
from snaketune.models.builtin_space import discover
from snaketune.search.space import Space
from snaketune.search.strategies import Proposal
from snaketune.study.config import load_study
from snaketune.study.plan import NotInPlan, Plan
from snaketune.trial.integrity import check_built

# the tiny study's first-round trials, as a dry run after its space job names them (/tmp/ids.sh)
FIRST_TRIALS = {
    "grid": ["8dce14f9dd98", "81ddf57b4995"],
    "random": ["f8fe76aaf933", "5724c5da6848"],
    "hyperband/i0_b1": ["18501de2c39f", "f915bdcb7d34"],
    "hyperband/i0_b0": ["3033a56ba6ce", "7a080897cead"],
}


class Waiting(Exception):
    """What Snakemake's checkpoints.<name>.get() raises until the checkpoint has run."""


def awaited(path, **wildcards):
    """A round file as the workflow's `round_file` gives it: from disk, else awaited."""
    if not Path(path).exists():
        raise Waiting(path, wildcards)
    return path


@pytest.fixture
def plan(tmp_path, monkeypatch, mnist_path):
    """The tiny study's plan in an empty working directory, its space discovered."""
    monkeypatch.chdir(tmp_path)
    config = copy.deepcopy(TINY)
    config["data"]["path"] = str(mnist_path)
    study = load_study(config, ROOT / "config" / "schema.yaml")
    plan = Plan(study)
    write(plan.space_file, discover("mlp", Space.from_config(study.config["space"])).to_json() + "\n")
    return plan


def write(path, text):
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def write_round(plan, name, series, round_, proposals):
    path = plan.round_path(name, series, round_)
    write(path, json.dumps({"proposals": [p.to_dict() for p in proposals]}))
    return path


def write_metrics(plan, tid, **record):
    write(plan.trial_file(tid, "metrics.csv"), ",".join(record) + "\n" + ",".join(map(str, record.values())) + "\n")


def test_the_layout_gives_the_rules_the_patterns_they_always_had():
    paths = Layout("results/s")
    round_ = ("{strategy}", "{key}", "{series}", "{round}")
    expected = [
        ("results/s/trials/{trial}/metrics.csv", paths.trial_file("{trial}", "metrics.csv")),
        ("results/s/trials/{trial}/history.csv", paths.trial_file("{trial}", "history.csv")),
        ("results/s/trials/{trial}/model.keras", paths.trial_file("{trial}", "model.keras")),
        ("results/s/logs/trials/{trial}.log", paths.trial_log("{trial}")),
        ("results/s/benchmarks/trials/{trial}.tsv", paths.trial_benchmark("{trial}")),
        ("results/s/rounds/{strategy}/{key}/{series}/round_{round}.json", paths.round_file(*round_)),
        ("results/s/logs/rounds/{strategy}/{key}/{series}/round_{round}.log", paths.round_log(*round_)),
        ("results/s/benchmarks/rounds/{strategy}/{key}/{series}/round_{round}.tsv", paths.round_benchmark(*round_)),
        ("results/s/strategies/{table}/{tkey}.csv", paths.table_file("{table}", "{tkey}")),
        ("results/s/logs/strategies/{table}/{tkey}.log", paths.table_log("{table}", "{tkey}")),
        (
            "results/s/final/{trial}/{fkey}/test_metrics.json",
            paths.final_file("{trial}", "{fkey}", "test_metrics.json"),
        ),
        ("results/s/final/{trial}/{fkey}/model.keras", paths.final_file("{trial}", "{fkey}", "model.keras")),
        ("results/s/logs/final/{trial}/{fkey}.log", paths.final_log("{trial}", "{fkey}")),
        ("results/s/benchmarks/final/{trial}/{fkey}.tsv", paths.final_benchmark("{trial}", "{fkey}")),
        ("results/s/data/k", paths.data_dir("k")),
        ("results/s/data/k/info.json", paths.data_info("k")),
        ("results/s/logs/data/k.log", paths.data_log("k")),
        ("results/s/space/k.json", paths.space_file("k")),
        ("results/s/logs/space/k.log", paths.space_log("k")),
        ("results/s/benchmarks/space/k.tsv", paths.space_benchmark("k")),
        ("results/s/plan/k.json", paths.plan_file("k")),
        ("results/s/trials.csv", paths.trials_csv),
        ("results/s/best_params.json", paths.best_params),
        ("results/s/optuna.journal", paths.journal),
        ("results/s/space.json", paths.space_json),
        ("results/s/summary.md", paths.summary),
        ("results/s/logs/aggregate.log", paths.log("aggregate")),
        ("results/s/logs/plots.log", paths.log("plots")),
        ("results/s/logs/summary.log", paths.log("summary")),
        ("results/s/logs/publish_final.log", paths.log("publish_final")),
        (["results/s/final/test_metrics.json", "results/s/final/model.keras"], paths.published_final),
        (
            [
                f"results/s/plots/{name}.png"
                for name in (
                    "best_so_far_by_trial",
                    "best_so_far_by_epochs",
                    "best_so_far_by_time",
                    "objective_vs_hyperparameters",
                    "learning_curves_top5",
                    "objective_distribution",
                    "param_importances",
                    "parallel_coordinate",
                    "pareto_front",
                )
            ],
            paths.plots,
        ),
    ]
    for want, got in expected:
        assert got == want
    assert Layout.of_trials_csv(paths.trials_csv).out == "results/s"
    assert Layout.of_study("s").out == "results/s"


def test_the_plan_places_the_tiny_study_where_it_always_was(plan):
    assert plan.out == plan.paths.out == "results/tiny"
    assert plan.data_dir == "results/tiny/data/b4822d6c"
    assert plan.plan_file == "results/tiny/plan/6e16d5d1.json"
    assert plan.space_file == "results/tiny/space/4ceda0d3.json"
    assert plan.tables() == ["grid", "random", "bayesian", "hyperband/i0_b1", "hyperband/i0_b0", "tpe", "gp"]
    assert plan.table_path("bayesian") == "results/tiny/strategies/bayesian/003abc9b.csv"
    assert plan.round_path("bayesian", "all", 0) == "results/tiny/rounds/bayesian/fbe0a39d/all/round_0.json"


def test_the_first_rounds_have_the_trial_ids_they_always_had(plan):
    for table, ids in FIRST_TRIALS.items():
        trials, files = plan.table_trials(table)
        assert [tid for tid, _ in trials] == ids and files == []
    # a strategy of one round proposed from the space alone has no round in its table
    assert plan.table_trials("grid")[0] == [("8dce14f9dd98", None), ("81ddf57b4995", None)]
    assert plan.table_trials("hyperband/i0_b0")[0] == [("3033a56ba6ce", 0), ("7a080897cead", 0)]


def test_a_round_that_learns_is_awaited_in_inputs_and_left_out_of_params(plan):
    key = plan.round_key("bayesian")
    with pytest.raises(Waiting) as waited:
        plan.table_inputs("bayesian", await_round=awaited)
    path, wildcards = waited.value.args
    assert path == plan.round_path("bayesian", "all", 0)
    assert wildcards == {"strategy": "bayesian", "key": key, "series": "all", "round": 0}
    with pytest.raises(Waiting):
        plan.round_inputs("bayesian", key, "all", 1, await_round=awaited)
    # params functions stop at the first round not yet written
    assert plan.table_membership("bayesian") == []
    assert plan.round_history("bayesian", key, "all", 1) == []
    # round 0 needs no round before it
    assert plan.round_inputs("bayesian", key, "all", 0, await_round=awaited) == {"metrics": [], "rounds": []}


def test_a_written_round_gives_its_trials_to_the_table_and_the_next_round(plan):
    key = plan.round_key("bayesian")
    space = plan.space()
    proposals = [Proposal(space.complete({"learning_rate": lr})) for lr in (0.001, 0.002)]
    first = write_round(plan, "bayesian", "all", 0, proposals)
    ids = [tid for tid, _ in plan.table_trials("bayesian")[0]]
    assert len(ids) == 2 and ids == plan.read_round(first)

    history = plan.round_history("bayesian", key, "all", 1)
    assert history == [[tid, plan.values_of(tid), {}, 0] for tid in ids]
    assert plan.round_inputs("bayesian", key, "all", 1, await_round=awaited) == {
        "metrics": [f"results/tiny/trials/{tid}/metrics.csv" for tid in ids],
        "rounds": [first],
    }
    assert plan.table_membership("bayesian") == [
        [number, 0, tid, plan.values_of(tid), {}, "all"] for number, tid in enumerate(ids, start=1)
    ]
    # the table's inputs wait for round 1, which learns from round 0
    with pytest.raises(Waiting) as waited:
        plan.table_inputs("bayesian", await_round=awaited)
    assert waited.value.args[1]["round"] == 1
    second = write_round(plan, "bayesian", "all", 1, [Proposal(space.complete({"learning_rate": 0.004}))])
    inputs = plan.table_inputs("bayesian", await_round=awaited)
    assert inputs["rounds"] == [first, second] and len(inputs["metrics"]) == 3


def test_a_promoted_trial_needs_its_parent_and_carries_its_schedule(plan):
    parent = FIRST_TRIALS["hyperband/i0_b1"][0]
    schedule = {"epochs": 2, "initial_epoch": 1, "parent": parent}
    write_round(plan, "hyperband", "i0_b1", 1, [Proposal(plan.values_of(parent), schedule)])
    trials, files = plan.table_trials("hyperband/i0_b1", await_round=awaited)
    (promoted, round_) = trials[-1]
    assert round_ == 1 and files == [plan.round_path("hyperband", "i0_b1", 1)]
    assert plan.trial_parent(promoted) == f"results/tiny/trials/{parent}/metrics.csv"
    assert plan.trial_parent(parent) is None
    values = plan.trial_values(promoted)
    assert list(values) == sorted(values)
    assert values["tuner/trial_id"] == parent and values["tuner/epochs"] == 2
    assert plan.trial_values(parent) == dict(
        sorted({**plan.values_of(parent), "tuner/epochs": 1, "tuner/initial_epoch": 0}.items())
    )


def test_a_table_or_final_model_of_another_configuration_is_named(plan):
    plan.check_table("bayesian", plan.table_key("bayesian"))
    with pytest.raises(NotInPlan, match=r"results/tiny/strategies/bayesian/00000000.csv is not a table of study tiny"):
        plan.check_table("bayesian", "00000000")
    tid = FIRST_TRIALS["grid"][0]
    with pytest.raises(NotInPlan, match=rf"results/tiny/final/{tid}/00000000/ is not a final model of study tiny"):
        plan.final_configuration(tid, "00000000")


def test_the_final_model_retrains_the_best_trial_once_the_aggregate_names_it(plan):
    tid = FIRST_TRIALS["random"][1]
    key = plan.final_key(tid)
    write_metrics(plan, tid, trial_id=tid, objective_epoch="3.0")
    assert plan.final_configuration(tid, key) == {
        "trial_id": tid,
        "hyperparameters": plan.values_of(tid),
        "objective_epoch": 3,
    }
    assert not plan.aggregated()
    write(plan.paths.best_params, json.dumps({"overall": {"trial_id": tid}}))
    assert not plan.aggregated()  # the aggregate of another plan
    write(plan.plan_file, "{}")
    assert plan.aggregated() and plan.best_trial() == tid
    assert plan.final_inputs(tid) == {
        "metrics": f"results/tiny/final/{tid}/{key}/test_metrics.json",
        "model": f"results/tiny/final/{tid}/{key}/model.keras",
        "best": "results/tiny/best_params.json",
    }


def test_the_study_outputs_and_the_summarys_inputs(plan):
    published = ["results/tiny/final/test_metrics.json", "results/tiny/final/model.keras"]
    assert plan.summary_inputs() == {
        "trials": "results/tiny/trials.csv",
        "best": "results/tiny/best_params.json",
        "space": "results/tiny/space.json",
        "final": published[0],
    }
    outputs = plan.study_outputs(rebuild={"results/tiny/trials/x/model.keras": "lost"})
    assert outputs == [
        "results/tiny/trials.csv",
        "results/tiny/best_params.json",
        "results/tiny/summary.md",
        "results/tiny/optuna.journal",
        "results/tiny/plan/6e16d5d1.json",
        *(f"results/tiny/plots/{name}.png" for name in PLOTS),
        *published,
        "results/tiny/trials/x/model.keras",
    ]
    plan.study.config["final"]["enabled"] = False
    assert "final" not in plan.summary_inputs() and not set(published) & set(plan.study_outputs())


def test_what_was_built_and_is_lost_is_found_at_the_layouts_paths(plan):
    tid = FIRST_TRIALS["grid"][0]
    write(plan.table_path("grid"), f"strategy,trial_number,trial_id,model_bytes\ngrid,1,{tid},5\n")
    write(plan.trial_file(tid, "metrics.csv"), "model_bytes\n5\n")
    missing, damaged = check_built(plan, final=True)
    assert set(missing) == {plan.trial_file(tid, "history.csv"), plan.trial_file(tid, "model.keras")}
    assert damaged == {}
    write(plan.paths.published_final[0], json.dumps({"model_sha256": "0" * 64}))
    missing, _ = check_built(plan, final=True)
    assert plan.paths.published_final[1] in missing
