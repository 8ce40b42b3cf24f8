"""Several fits per configuration through the workflow: one small study with 2-fold
cross-validation (grid and Hyperband), run once, then dry runs of changed configs on it.
The parts without Snakemake are checked in tests/test_fits.py."""

import copy
import json

import pandas as pd
import pytest
from conftest import TINY, planned_jobs, snakemake, write_config

pytestmark = pytest.mark.workflow


def _config(mnist_path):
    config = copy.deepcopy(TINY)
    config["data"]["path"] = str(mnist_path)
    config["training"]["folds"] = 2
    for name, strategy in config["strategies"].items():
        if name not in ("grid", "hyperband"):
            strategy["enabled"] = False
    return config


@pytest.fixture(scope="module")
def folded(tmp_path_factory, mnist_path):
    """The study, run once with --cores 2: (workdir, config)."""
    workdir = tmp_path_factory.mktemp("folded")
    config = _config(mnist_path)
    write_config(workdir, config)
    snakemake(workdir, "--cores", "2")
    return workdir, config


def _dry_run(folded, change) -> tuple[dict, str]:
    workdir, config = folded
    changed = copy.deepcopy(config)
    change(changed)
    write_config(workdir, changed)
    try:
        result = snakemake(workdir, "-n")
    finally:
        write_config(workdir, config)
    return planned_jobs(result.stdout), result.stdout


def _trials(folded) -> pd.DataFrame:
    return pd.read_csv(folded[0] / "results" / "tiny" / "trials.csv", dtype={"trial_id": str, "parent": str})


def test_each_configuration_is_the_mean_of_its_folds(folded):
    trials = _trials(folded)
    out = folded[0] / "results" / "tiny" / "trials"
    assert (trials["fits"] == 2).all() and (trials["fit_plan"] == "folds_2").all()
    for row in trials.drop_duplicates("trial_id").itertuples():
        folds = [pd.read_csv(out / row.trial_id / f"fold_{i}_of_2" / "metrics.csv").iloc[0] for i in (0, 1)]
        assert {f["fit"] for f in folds} == {"fold_0_of_2", "fold_1_of_2"}
        values = [f["objective_value"] for f in folds]
        assert row.objective_value == pytest.approx(sum(values) / 2)
        assert row.objective_std == pytest.approx(abs(values[0] - values[1]) / 2**0.5)
        # each fold trains and validates on its own rows: they differ
        assert len({f["model_sha256"] for f in folds}) == 2
        # nothing trained in the trial's own folder: its single split is not one of the fits
        assert not (out / row.trial_id / "metrics.csv").exists()


def test_hyperband_promotes_on_the_mean_over_the_folds(folded):
    trials = _trials(folded)
    hyperband = trials[trials["strategy"] == "hyperband"]
    promoted_somewhere = False
    for _, bracket in hyperband.groupby("bracket"):
        for round_ in sorted(bracket["round"].unique())[1:]:
            before = bracket[bracket["round"] == round_ - 1].drop_duplicates("trial_id")
            parents = set(bracket[bracket["round"] == round_]["parent"])
            kept = before[before["trial_id"].isin(parents)]["objective_value"]
            dropped = before[~before["trial_id"].isin(parents)]["objective_value"]
            assert len(kept) == len(parents)
            assert dropped.empty or kept.min() >= dropped.max()
            promoted_somewhere = True
    assert promoted_somewhere
    # a promoted fit resumes its parent's same fold
    out = folded[0] / "results" / "tiny" / "trials"
    child = hyperband[hyperband["parent"].notna()].iloc[0]
    log = (folded[0] / "results" / "tiny" / "logs" / "trials" / child["trial_id"] / "fold_1_of_2.log").read_text()
    assert "fold_1_of_2" in log
    assert (out / child["parent"] / "fold_1_of_2" / "model.keras").exists()


def test_the_summary_and_best_params_give_the_winners_spread(folded):
    out = folded[0] / "results" / "tiny"
    best = json.loads((out / "best_params.json").read_text())["overall"]
    assert best["fits"] == 2 and best["objective_std"] >= 0
    summary = (out / "summary.md").read_text()
    assert f"Over its 2 fits: {best['objective_value']:.4f} ± {best['objective_std']:.4f}" in summary


def test_fits_are_jobs_counted_per_configuration(folded):
    configurations = _trials(folded)["trial_id"].nunique()
    # a finished study: nothing to do
    jobs, output = _dry_run(folded, lambda c: None)
    assert "Nothing to be done" in output, jobs
    # a second execution: one new fit per fold of every configuration proposed without history
    # (grid, Hyperband's first rungs), nothing trained again; promoted ones wait for their rounds
    jobs, output = _dry_run(folded, lambda c: c["training"].update(executions_per_trial=2))
    new = sorted(set(line.split("fit ")[1].split(":")[0] for line in output.splitlines() if ", fit " in line))
    assert new == ["fold_0_of_2_execution_1", "fold_1_of_2_execution_1"]
    assert "train" not in jobs and jobs["train_fit"] % 2 == 0 and jobs["train_fit"] < 2 * configurations
    first_rungs = jobs["train_fit"] // 2
    # k folds: every fold of the new k is new (the folds depend on k); the 2-fold fits stay
    jobs, _ = _dry_run(folded, lambda c: c["training"].update(folds=3))
    assert "train" not in jobs and jobs["train_fit"] == 3 * first_rungs
    # neither setting: one fit each, in the trial's own folder
    jobs, _ = _dry_run(folded, lambda c: c["training"].update(folds=None))
    assert "train_fit" not in jobs and jobs["train"] == first_rungs
    assert (
        len(list((folded[0] / "results" / "tiny" / "trials").glob("*/fold_*_of_2/model.keras"))) == 2 * configurations
    )
