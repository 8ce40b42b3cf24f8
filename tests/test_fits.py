"""Several fits per configuration (snaketune.trial.fits, snaketune.data.folds), without
Snakemake: the fits' names and seeds, the folds, the configuration's record over its fits,
the summary's spread, and what the config refuses. tests/test_several_fits.py runs them."""

import math

import numpy as np
import pandas as pd
import pytest

from snaketune.core.errors import ConfigError
from snaketune.data.folds import fold, validation_rows
from snaketune.report.summary import spread_lines
from snaketune.search.objective import Objective
from snaketune.study.checks import check_folds
from snaketune.trial.fits import Fit, combine, fits, plan_name, write_record


def test_every_fit_has_a_name_it_can_be_read_back_from():
    every = fits(3) + fits(2, 5)
    assert [f.name for f in fits(3)] == ["execution_0", "execution_1", "execution_2"]
    assert [f.name for f in fits(2, 2)] == [
        "fold_0_of_2",
        "fold_1_of_2",
        "fold_0_of_2_execution_1",
        "fold_1_of_2_execution_1",
    ]
    assert all(Fit.from_name(f.name) == f for f in every)
    for wrong in ("", "fold_5_of_5", "execution_", "folds_5", "mean_executions_2", "fold_1_of_2_execution_0"):
        with pytest.raises(ValueError):
            Fit.from_name(wrong)


def test_only_the_single_fit_trains_in_the_trials_own_folder_with_the_trials_seed():
    assert [f.own_folder for f in fits(2)] == [True, False]
    assert not any(f.own_folder for f in fits(1, 3))
    # the first execution keeps the trial's seed (every fold of it); the others derive theirs
    assert {f.seed(7) for f in fits(1, 3)} == {7}
    seeds = [f.seed(7) for f in fits(4)]
    assert seeds[0] == 7 and len(set(seeds)) == 4
    assert [f.seed(7) for f in fits(4)] == seeds  # derived, not drawn
    # replicate r shifts the trial's seed by r: its executions are not another replicate's
    assert Fit(1).seed(8) not in seeds


def test_the_records_name_says_over_which_fits():
    assert plan_name(1, None) is None
    assert [plan_name(3), plan_name(1, 5), plan_name(2, 5)] == ["executions_3", "folds_5", "folds_5_executions_2"]


def test_folds_cover_every_row_once_stratified_and_seeded():
    y = np.repeat(np.arange(3), [30, 60, 90])
    folds = validation_rows(y, 5, seed=1, stratify=True)
    joined = np.concatenate(folds)
    assert sorted(joined.tolist()) == list(range(len(y)))  # each row validated exactly once
    for rows in folds:  # each fold holds the classes as the whole does
        assert np.bincount(y[rows]).tolist() == [6, 12, 18]
    again = validation_rows(y, 5, seed=1, stratify=True)
    assert all((a == b).all() for a, b in zip(folds, again))
    assert not all((a == b).all() for a, b in zip(folds, validation_rows(y, 5, seed=2, stratify=True)))
    assert len(validation_rows(y, 3, seed=1, stratify=True)[0]) == 60  # the folds depend on k
    one_hot = np.eye(3)[y]
    assert all((a == b).all() for a, b in zip(folds, validation_rows(one_hot, 5, seed=1, stratify=True)))


def test_a_fold_trains_on_the_other_folds_rows_of_train_and_val_together():
    x_train, y_train = np.arange(40).reshape(20, 2), np.arange(20) % 2
    x_val, y_val = np.arange(40, 50).reshape(5, 2), np.arange(5) % 2
    data = {"train": (x_train, y_train), "val": (x_val, y_val)}
    info = {"task": "classification", "validation_split": 0.2}
    seen = []
    for index in range(5):
        laid = fold(data, info, k=5, index=index, seed=0)
        (xt, yt), (xv, yv) = laid["train"], laid["val"]
        assert len(xt) == 20 and len(xv) == 5
        assert not set(xt[:, 0]) & set(xv[:, 0])
        assert (xv[:, 0] // 2 % 2 == yv).all() and (xt[:, 0] // 2 % 2 == yt).all()  # rows kept whole
        seen += xv[:, 0].tolist()
    assert sorted(seen) == list(range(0, 50, 2))
    with pytest.raises(ConfigError, match="x_val, y_val"):
        fold(data, {**info, "validation_split": None}, k=5, index=0, seed=0)


def test_data_with_its_own_validation_arrays_or_too_few_rows_is_refused_before_any_job():
    check_folds(None, {"has_val": True})
    check_folds(5, None)  # MNIST, fetched: split by validation_split
    with pytest.raises(ConfigError, match="training.folds: the data gives validation arrays of its own"):
        check_folds(5, {"has_val": True})
    with pytest.raises(ConfigError, match="training.folds: 5 folds of 4 rows"):
        check_folds(5, {"has_val": False, "samples": {"y_train": 4}})


def _record(value, status="completed", **more):
    return {
        "trial_id": "abc",
        "objective": "val_accuracy",
        "objective_value": value,
        "objective_epoch": 2,
        "epochs_run": 3,
        "cumulative_epochs": 3,
        "fit_seconds": 1.5,
        "load_seconds": 0.1,
        "params": 100,
        "peak_rss_mb": 500.0,
        "model_bytes": 1000,
        "model_sha256": "x",
        "status": status,
        "error": "" if status == "completed" else "NaN loss",
        "best_val_loss": 0.5,
        **more,
    }


def test_a_configurations_record_is_the_mean_of_its_fits_with_their_spread_and_compute():
    record = combine([_record(0.8), _record(0.9, fit="execution_1"), _record(0.7)], ["a", "b", "c"], "max")
    assert record["objective_value"] == pytest.approx(0.8)
    assert record["objective_std"] == pytest.approx(0.1)
    assert record["fits"] == 3 and record["status"] == "completed"
    assert record["epochs_run"] == 9 and record["fit_seconds"] == pytest.approx(4.5)  # the compute, summed
    assert record["cumulative_epochs"] == 3 and record["model_bytes"] == 0 and "fit" not in record


def test_a_failed_fit_fails_its_configuration_naming_the_fit():
    record = combine([_record(0.8), _record(math.nan, "failed")], ["fold_0_of_2", "fold_1_of_2"], "max")
    assert record["status"] == "failed" and math.isnan(record["objective_value"])
    assert record["error"] == "fit fold_1_of_2: NaN loss"


def test_the_combine_job_writes_the_record_and_the_mean_history(tmp_path):
    metrics, histories = [], []
    for i, value in enumerate((0.6, 0.8)):
        folder = tmp_path / f"f{i}"
        folder.mkdir()
        pd.DataFrame([_record(value)]).to_csv(folder / "metrics.csv", index=False)
        epochs = 3 if i else 2  # one fit stopped early
        pd.DataFrame({"epoch": range(1, epochs + 1), "val_accuracy": [value] * epochs}).to_csv(
            folder / "history.csv", index=False
        )
        metrics.append(folder / "metrics.csv")
        histories.append(folder / "history.csv")
    write_record(
        metrics=metrics,
        histories=histories,
        names=["execution_0", "execution_1"],
        plan="executions_2",
        direction="max",
        out_metrics=tmp_path / "metrics.csv",
        out_history=tmp_path / "history.csv",
    )
    record = pd.read_csv(tmp_path / "metrics.csv").iloc[0]
    assert record["objective_value"] == pytest.approx(0.7) and record["fit_plan"] == "executions_2"
    history = pd.read_csv(tmp_path / "history.csv")
    assert history["val_accuracy"].tolist() == pytest.approx([0.7, 0.7, 0.8])  # each epoch over the fits at it


def test_the_summary_says_the_winners_spread_and_whether_the_runner_up_is_within_it():
    trials = pd.DataFrame(
        {
            "trial_id": ["a", "b", "c"],
            "objective_value": [0.80, 0.78, 0.60],
            "objective_std": [0.03, 0.01, 0.02],
            "fits": [5, 5, 5],
            "status": ["completed"] * 3,
        }
    )
    objective = Objective("val_accuracy", "max")
    overall = {"trial_id": "a", "objective_value": 0.80, "objective_std": 0.03, "fits": 5}
    (line, _) = spread_lines(trials, overall, objective)
    assert line.startswith("Over its 5 fits: 0.8000 ± 0.0300 (mean ± standard deviation).")
    assert "trial `b` (0.7800 ± 0.0100), is within one standard deviation" in line
    apart = trials.assign(objective_value=[0.80, 0.70, 0.60])
    assert "more than one standard deviation behind it" in spread_lines(apart, overall, objective)[0]
    assert spread_lines(trials, {"trial_id": "a", "objective_value": 0.8}, objective) == []  # one fit each


def test_a_fold_normalises_with_its_own_training_rows(tiny_data):
    """The statistics of the prepared training split, computed again from its rows, are the
    ones the data job wrote; a fold's are those of its own rows."""
    from snaketune.data import prepared

    data, info = prepared.load(tiny_data, labels=True)
    features, _ = prepared.stats_of(data["train"])
    mean, variance = prepared.feature_stats(tiny_data)
    assert np.allclose(features[""][0], mean) and np.allclose(features[""][1], variance)
    laid = fold(data, info, k=2, index=0, seed=0)
    own = prepared.stats_of(laid["train"])[0][""]
    x = np.asarray(laid["train"][0], dtype=np.float64)
    assert np.isclose(own[0], x.mean()) and np.isclose(own[1], x.var())
