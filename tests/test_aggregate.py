"""Aggregation and plots on synthetic trial files."""

import json

import pandas as pd
import pytest

from snaketune.report.aggregate import aggregate, strategy_table
from snaketune.report.plots import best_so_far, plot_all
from snaketune.report.summary import write_summary
from snaketune.search.objective import Objective
from snaketune.search.space import Space

SPACE = Space.from_config(
    {
        "learning_rate": {"type": "float", "min": 1e-4, "max": 1e-1, "sampling": "log"},
        "activation": {"type": "choice", "values": ["relu", "tanh"]},
    }
)


def _trial(root, tid, lr, act, value, status="completed", error=""):
    folder = root / "trials" / tid
    folder.mkdir(parents=True)
    pd.DataFrame(
        [
            {
                "study": "s",
                "trial_id": tid,
                "learning_rate": lr,
                "activation": act,
                "objective": "val_accuracy",
                "objective_value": value,
                "objective_epoch": 2,
                "epochs_run": 2,
                "fit_seconds": 10.0,
                "params": 100,
                "status": status,
                "error": error,
            }
        ]
    ).to_csv(folder / "metrics.csv", index=False)
    pd.DataFrame(
        {
            "epoch": [1, 2],
            "loss": [1.0, 0.5],
            "accuracy": [0.5, 0.7],
            "val_loss": [1.1, 0.6],
            "val_accuracy": [0.4, value if value == value else 0.1],
            "seconds": [5.0, 5.0],
        }
    ).to_csv(folder / "history.csv", index=False)
    return str(folder / "metrics.csv")


@pytest.fixture
def study(tmp_path):
    root = tmp_path / "results" / "s"
    (root / "space").mkdir(parents=True)
    (root / "space" / "0123abcd.json").write_text(SPACE.to_json())
    (root / "plan").mkdir()
    (root / "plan" / "00000000.json").write_text("{}")  # an earlier plan's marker
    files = {
        "123e45678901": _trial(root, "123e45678901", 0.01, "relu", 0.90),
        "000123456789": _trial(root, "000123456789", 0.001, "tanh", 0.95),
        "c": _trial(root, "c", 0.1, "relu", float("nan"), "failed", "FloatingPointError: loss became NaN"),
        "d": _trial(root, "d", 0.003, "tanh", 0.93),
    }
    values = {
        "123e45678901": {"learning_rate": 0.01, "activation": "relu"},
        "000123456789": {"learning_rate": 0.001, "activation": "tanh"},
        "c": {"learning_rate": 0.1, "activation": "relu"},
        "d": {"learning_rate": 0.003, "activation": "tanh"},
    }
    tables = []
    for strategy, members in (
        ("grid", ["123e45678901", "c"]),
        ("random", ["000123456789", "123e45678901"]),
        ("bayesian", ["d"]),
    ):
        membership = [
            [i + 1, 0 if strategy == "bayesian" else None, tid, values[tid], {}, "all"] for i, tid in enumerate(members)
        ]
        out = root / "strategies" / f"{strategy}.csv"
        strategy_table(
            strategy=strategy,
            membership=membership,
            metrics_files=[files[t] for t in members],
            space_file=root / "space" / "0123abcd.json",
            out=out,
        )
        tables.append(str(out))
    best = aggregate(
        tables=tables,
        space_file=root / "space" / "0123abcd.json",
        objective={"name": "val_accuracy", "direction": "max"},
        trials_csv=root / "trials.csv",
        best_json=root / "best_params.json",
        journal=root / "optuna.journal",
        space_json=root / "space.json",
        plan={"tables": tables},
        plan_file=root / "plan" / "89abcdef.json",
    )
    write_summary(
        study="s",
        trials_csv=root / "trials.csv",
        best_json=root / "best_params.json",
        space_file=root / "space.json",
        objective={"name": "val_accuracy", "direction": "max"},
        out=root / "summary.md",
    )
    return root, best


def test_trials_csv_has_every_strategy_trial_with_its_hyperparameters(study):
    root, _ = study
    trials = pd.read_csv(root / "trials.csv", keep_default_na=False, na_values=[""])
    assert list(trials.columns[:8]) == [
        "strategy",
        "replicate",
        "trial_number",
        "bracket",
        "round",
        "parent",
        "trial_id",
        "learning_rate",
    ]
    assert trials[["strategy", "trial_id"]].values.tolist() == [
        ["grid", "123e45678901"],
        ["grid", "c"],
        ["random", "000123456789"],
        ["random", "123e45678901"],
        ["bayesian", "d"],
    ]
    failed = trials[trials["trial_id"] == "c"].iloc[0]
    assert failed["status"] == "failed" and "NaN" in failed["error"]


def test_best_params_per_strategy_and_overall(study):
    root, best = study
    saved = json.loads((root / "best_params.json").read_text())
    assert saved == json.loads(json.dumps(best))
    assert saved["overall"]["trial_id"] == "000123456789" and saved["overall"]["strategy"] == "random"
    assert saved["overall"]["hyperparameters"] == {"learning_rate": 0.001, "activation": "tanh"}
    assert {s: e["trial_id"] for s, e in saved["per_strategy"].items()} == {
        "grid": "123e45678901",
        "random": "000123456789",
        "bayesian": "d",
    }


def test_summary_reports_best_failures_and_compute(study):
    root, _ = study
    text = (root / "summary.md").read_text()
    assert "**Best overall:** 0.9500 by `random`" in text
    assert "| grid | 2 | 1 | 0.9000 |" in text
    assert "4 distinct trials trained in 40.0 s of fitting; 1 of the strategies' proposals" in text
    assert "keras-tuner" in text and "snakemake" in text and "optuna" in text


def test_strategies_closer_than_one_validation_sample_tie():
    from snaketune.report.summary import ties

    best = {
        "overall": {"objective_value": 0.9752},
        "per_strategy": {
            "grid": {"objective_value": 0.9752},
            "hyperband": {"objective_value": 0.97515},
            "random": {"objective_value": 0.9740},
            "gp": None,
        },
    }
    assert ties(best, 1 / 12000) == ["grid", "hyperband"]
    assert ties(best, 0.0) == ["grid"]


def test_the_journal_holds_one_optuna_study_per_strategy_with_every_trial(study):
    import optuna
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    root, _ = study
    storage = JournalStorage(JournalFileBackend(str(root / "optuna.journal")))
    studies = {
        s.study_name: optuna.load_study(study_name=s.study_name, storage=storage)
        for s in optuna.get_all_study_summaries(storage)
    }
    assert list(studies) == ["grid", "random", "bayesian"]
    grid = studies["grid"].trials
    assert [t.user_attrs["trial_id"] for t in grid] == ["123e45678901", "c"]
    assert [t.state.name for t in grid] == ["COMPLETE", "FAIL"]
    assert grid[0].value == 0.90 and grid[0].params == {"learning_rate": 0.01, "activation": "relu"}
    assert grid[0].intermediate_values == {1: 0.4, 2: 0.9}


def test_the_aggregate_marks_its_plan_and_only_its_plan(study):
    # An earlier plan's marker goes, so that changing back to that plan finds the aggregate stale.
    root, _ = study
    assert [p.name for p in (root / "plan").iterdir()] == ["89abcdef.json"]
    assert len(json.loads((root / "plan" / "89abcdef.json").read_text())["tables"]) == 3
    assert (root / "space.json").read_text() == SPACE.to_json()


def test_best_so_far_ignores_failed_trials():
    frame = pd.DataFrame(
        {"objective_value": [0.5, float("nan"), 0.4, 0.7], "status": ["completed", "failed", "completed", "completed"]}
    )
    assert best_so_far(frame, Objective("val_accuracy", "max")).tolist() == [0.5, 0.5, 0.5, 0.7]
    assert best_so_far(frame, Objective("val_loss", "min")).tolist() == [0.5, 0.5, 0.4, 0.4]


def test_plots_are_written_as_png(study):
    root, _ = study
    names = [
        "best_so_far_by_trial",
        "best_so_far_by_epochs",
        "best_so_far_by_time",
        "objective_vs_hyperparameters",
        "learning_curves_top5",
        "objective_distribution",
        "param_importances",
        "parallel_coordinate",
        "pareto_front",
    ]
    outputs = [str(root / "plots" / f"{n}.png") for n in names]
    plot_all(
        trials_csv=root / "trials.csv",
        space_file=root / "space.json",
        objective={"name": "val_accuracy", "direction": "max"},
        outputs=outputs,
    )
    for path in outputs:
        with open(path, "rb") as fh:
            assert fh.read(8) == b"\x89PNG\r\n\x1a\n"
