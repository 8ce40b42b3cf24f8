"""The whole workflow on a tiny study: snakemake end to end, re-runs, budgets, bad input."""

import json
import re
import subprocess

import pandas as pd
import pytest
import yaml
from conftest import ROOT, TINY, planned_jobs, snakemake, snakemake_cmd, write_config

pytestmark = pytest.mark.workflow


@pytest.fixture
def finished_study(tiny_study):
    return tiny_study


def test_every_output_is_there(finished_study):
    workdir, config = finished_study
    out = workdir / "results" / "tiny"
    trials = pd.read_csv(out / "trials.csv", keep_default_na=False, na_values=[""])
    # 2 grid points, 2 random trials, 4 Bayesian trials in 2 rounds of 2, Hyperband's 2 brackets
    # (2 trials, the best promoted; 2 trials), 2 TPE and 2 GP trials in a round each
    assert trials.groupby("strategy", sort=False).size().to_dict() == {
        "grid": 2,
        "random": 2,
        "bayesian": 4,
        "hyperband": 5,
        "tpe": 2,
        "gp": 2,
    }
    assert sorted(trials.loc[trials["strategy"] == "bayesian", "round"].tolist()) == [0, 0, 1, 1]
    assert set(trials["status"]) == {"completed"}
    assert trials["objective_value"].between(0, 1).all()
    for tid in trials["trial_id"]:
        folder = out / "trials" / tid
        for name in ("model.keras", "history.csv", "metrics.csv"):
            assert (folder / name).stat().st_size > 0
        log = (out / "logs" / "trials" / f"{tid}.log").read_text()
        assert log.startswith("resources: ") and "\nresult: completed, val_accuracy " in log, log
        # no harmless-but-alarming TensorFlow C++ log lines (E0000 ... node_def_util ...)
        assert not re.search(r"^[EW]\d{4} |absl::InitializeLog", log, re.M), log
        assert (out / "benchmarks" / "trials" / f"{tid}.tsv").exists()
    bayes = trials[trials["strategy"] == "bayesian"]
    assert bayes["trial_id"].nunique() == 4  # never proposed twice
    best = json.loads((out / "best_params.json").read_text())
    assert best["overall"]["objective_value"] == pytest.approx(trials["objective_value"].max())
    assert set(best["per_strategy"]) == {"grid", "random", "bayesian", "hyperband", "tpe", "gp"}
    assert "Best overall" in (out / "summary.md").read_text()
    for name in (
        "best_so_far_by_trial",
        "best_so_far_by_epochs",
        "best_so_far_by_time",
        "objective_vs_hyperparameters",
        "learning_curves_top5",
        "objective_distribution",
    ):
        assert (out / "plots" / f"{name}.png").read_bytes()[:4] == b"\x89PNG"
    final = json.loads((out / "final" / "test_metrics.json").read_text())
    assert final["trial_id"] == best["overall"]["trial_id"]
    assert final["test_samples"] == 10000 and final["train_samples"] == 400
    assert 0.3 < final["test_accuracy"] <= 1.0
    assert (out / "final" / "model.keras").stat().st_size > 0


def test_a_rerun_has_nothing_to_do(finished_study):
    workdir, _ = finished_study
    result = snakemake(workdir, "-n")
    assert "Nothing to be done" in result.stdout + result.stderr


def planned_after(finished_study, change) -> dict:
    """The dry run's jobs after `change(config)`; the study's config is restored after."""
    workdir, config = finished_study
    changed = json.loads(json.dumps(config))
    change(changed)
    write_config(workdir, changed)
    try:
        return planned_jobs(snakemake(workdir, "-n").stdout)
    finally:
        write_config(workdir, config)


def test_raising_the_random_budget_by_one_trains_exactly_one_model(finished_study):
    jobs = planned_after(finished_study, lambda c: c["strategies"]["random"].update(trials=3))
    assert jobs.get("train") == 1 and "strategy_round" not in jobs, jobs


def test_raising_the_bayesian_budget_adds_a_round_and_reruns_none(finished_study):
    jobs = planned_after(finished_study, lambda c: c["strategies"]["bayesian"].update(trials=6))
    # round 2 is new; its trials appear once it has run (a checkpoint), none of the old retrain
    assert jobs.get("strategy_round") == 1 and "train" not in jobs, jobs


def test_changing_the_grid_retrains_nothing_of_random_or_bayesian(finished_study):
    jobs = planned_after(
        finished_study, lambda c: c["strategies"]["grid"]["values"].update(learning_rate=[0.01, 0.005])
    )
    assert jobs.get("train") == 1 and "strategy_round" not in jobs, jobs  # only the new grid point


def test_the_report_holds_the_plots_and_summary(finished_study):
    workdir, _ = finished_study
    snakemake(workdir, "--report", "report.html")
    html = (workdir / "report.html").read_text(errors="replace")
    assert "best_so_far_by_trial.png" in html and "summary.md" in html


def test_bundling_the_trials_of_a_study_with_rounds_stops_before_any_job_saying_why(tmp_path, mnist_path):
    # Snakemake cannot group the jobs that a checkpoint adds (snaketune/workflow/bundles.py)
    write_config(tmp_path, {**TINY, "data": {**TINY["data"], "path": str(mnist_path)}})
    result = snakemake(tmp_path, "--cores", "1", "--groups", "train=trials", check=False)
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "work only for strategies whose trials follow from the search space (grid, random)" in output
    assert "bayesian, hyperband, tpe, gp" in output
    assert not (tmp_path / "results").exists()


def test_a_configfile_replaces_the_default_study(tmp_path):
    # Run from the project, where config/config.yaml is the default: a user's study with its
    # own model must not inherit the default's `model.type`, space or strategies.
    own = {
        "study": "own",
        "model": {"build_model": "examples/build_model.py:build_model"},
        "space": {},
        "strategies": {"random": {"trials": 2}},
    }
    path = tmp_path / "own.yaml"
    path.write_text(yaml.safe_dump(own))
    result = subprocess.run(
        snakemake_cmd("--configfile", str(path), "-n"), cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "exclude each other" not in result.stdout + result.stderr


@pytest.mark.parametrize(
    "change, needle",
    [
        ({"strategies": {"random": {"trials": 2, "seeed": 1}}}, "unknown key 'strategies.random.seeed'"),
        ({"space": {"units": {"type": "int", "min": 64, "max": 16}}}, "space.units: min (64) is greater than max (16)"),
        ({"model": {"build_model": "nowhere.py:build_model"}}, "model.build_model: file 'nowhere.py' not found"),
    ],
)
def test_bad_input_stops_before_any_job_and_touches_nothing(finished_study, change, needle):
    workdir, config = finished_study
    before = {p: p.stat().st_mtime_ns for p in (workdir / "results").rglob("*") if p.is_file()}
    write_config(workdir, {**config, **change})
    try:
        result = snakemake(workdir, "--cores", "1", check=False)
    finally:
        write_config(workdir, config)
    assert result.returncode != 0
    assert needle in result.stdout + result.stderr
    after = {p: p.stat().st_mtime_ns for p in (workdir / "results").rglob("*") if p.is_file()}
    assert after == before


def test_a_duplicated_key_in_a_configfile_stops_the_run_naming_it(tmp_path):
    # Snakemake itself would take the last `epochs:` silently.
    path = tmp_path / "study.yaml"
    path.write_text("study: dup\nstrategies: {random: {trials: 2}}\ntraining:\n  epochs: 2\n  epochs: 3\n")
    result = subprocess.run(
        snakemake_cmd("--configfile", str(path), "-n"), cwd=tmp_path, capture_output=True, text=True, timeout=300
    )
    assert result.returncode != 0
    assert f"{path}: line 5: duplicate key 'training.epochs' (first at line 4)" in result.stdout + result.stderr
    assert not (tmp_path / "results").exists()


def test_a_tab_in_the_default_config_file_is_named_with_its_line(tmp_path):
    # Without --configfile the workflow reads config/config.yaml of the working directory.
    (tmp_path / "config").mkdir()
    text = (ROOT / "config" / "config.yaml").read_text().replace("  epochs: 5", "\tepochs: 5")
    (tmp_path / "config" / "config.yaml").write_text(text)
    line = text[: text.index("\tepochs")].count("\n") + 1
    result = subprocess.run(snakemake_cmd("-n"), cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert result.returncode != 0
    assert f"config/config.yaml: line {line}, column 1" in result.stdout + result.stderr
    assert "tab" in result.stdout + result.stderr


def test_trial_and_round_jobs_ran_through_the_fork_server(finished_study):
    # A server that cannot start (a module it preloads is gone, say) leaves every job to run
    # by itself, seconds slower and silently: the logs say which it was.
    workdir, _ = finished_study
    out = workdir / "results" / "tiny"
    logs = [*(out / "logs" / "trials").glob("*.log"), *(out / "logs" / "rounds").glob("*/*/*/*.log")]
    assert len(logs) > 10
    for log in logs:
        assert "forkserver: unavailable" not in log.read_text(), log
