"""Re-running and extending a study from the files alone: docs/rerunning.md's promises, checked on a
copy of the finished tiny study without Snakemake's .snakemake/ metadata (as a fresh clone
holding a copied results/ would be), so that only the files and the config decide.

The dry runs leave the copy as it was; the runs that change it put it back to the tiny
study's config and results before they end.
"""

import contextlib
import copy
import json
import re
import shutil

import pandas as pd
import pytest
from conftest import planned_jobs, snakemake, write_config


def ran(output: str, rule: str) -> int:
    """How many jobs of `rule` a run reports finished (jobs planned after a checkpoint
    included, which its first job table does not list)."""
    return len(re.findall(rf"^Finished jobid: \d+ \(Rule: {rule}\)$", output, re.M))


pytestmark = pytest.mark.workflow


@pytest.fixture(scope="module")
def copied(tiny_study, tmp_path_factory):
    """The finished tiny study copied (mtimes kept) without .snakemake/: (workdir, config)."""
    source, config = tiny_study
    workdir = tmp_path_factory.mktemp("copied") / "study"
    shutil.copytree(source, workdir, copy_function=shutil.copy2, ignore=shutil.ignore_patterns(".snakemake"))
    return workdir, config


@contextlib.contextmanager
def changed(copied, change):
    """The copy's config with `change(config)` applied; the config restored and the run's
    .snakemake/ removed after."""
    workdir, config = copied
    changed_config = copy.deepcopy(config)
    if change:
        change(changed_config)
    write_config(workdir, changed_config)
    try:
        yield workdir
    finally:
        write_config(workdir, config)
        shutil.rmtree(workdir / ".snakemake", ignore_errors=True)


def dry_run(copied, change=None, *args) -> tuple[dict, str]:
    """The jobs `snakemake -n` plans after `change(config)`, and its output."""
    with changed(copied, change) as workdir:
        result = snakemake(workdir, "-n", *args)
    return planned_jobs(result.stdout), result.stdout + result.stderr


def run(copied, change=None, *args) -> str:
    with changed(copied, change) as workdir:
        result = snakemake(workdir, "--cores", "2", *args)
    return result.stdout + result.stderr


def random_trials(n):
    return lambda c: c["strategies"]["random"].update(trials=n)


@pytest.mark.parametrize("triggers", [(), ("--rerun-triggers", "mtime")], ids=["default triggers", "mtime only"])
def test_a_copied_finished_study_has_nothing_to_do(copied, triggers):
    jobs, output = dry_run(copied, None, *triggers)
    assert "Nothing to be done" in output, jobs


@pytest.mark.parametrize("triggers", [(), ("--rerun-triggers", "mtime")], ids=["default triggers", "mtime only"])
def test_raising_the_random_budget_by_one_trains_one_model_and_aggregates_again(copied, triggers):
    jobs, _ = dry_run(copied, random_trials(3), *triggers)
    assert jobs.get("train") == 1 and jobs.get("aggregate") == 1 and "strategy_round" not in jobs, jobs


def test_a_nested_override_on_the_command_line_is_typed_as_in_the_yaml_file(copied):
    # docs/rerunning.md's --config: nested values reach the workflow as text and are typed as YAML.
    jobs, output = dry_run(
        copied,
        None,
        "--config",
        'strategies={"random": {"trials": 3}}',
        'data={"validation_split": 0.25, "subset": 400}',
        'final={"enabled": true}',
    )
    assert jobs.get("train") == 1 and "strategy_round" not in jobs, output[-2000:]


@pytest.mark.parametrize("strategy", ["bayesian", "tpe", "gp"])
def test_raising_a_model_based_budget_adds_a_round_and_retrains_nothing(copied, strategy):
    jobs, _ = dry_run(
        copied, lambda c: c["strategies"][strategy].update(trials=c["strategies"][strategy]["trials"] + 2)
    )
    assert jobs.get("strategy_round") == 1 and "train" not in jobs, jobs


def test_raising_hyperbands_iterations_trains_only_the_new_brackets_first_rounds(copied):
    # max_epochs 2, factor 2: a new iteration adds bracket i1_b1 (2 trials, then a round that
    # promotes 1) and bracket i1_b0 (2 trials); the first iteration's brackets stay as they are.
    jobs, _ = dry_run(copied, lambda c: c["strategies"]["hyperband"].update(iterations=2))
    assert jobs.get("train") == 4 and jobs.get("strategy_round") == 1 and jobs.get("strategy_table") == 2, jobs


def test_changing_the_grid_trains_only_the_new_grid_point(copied):
    jobs, _ = dry_run(copied, lambda c: c["strategies"]["grid"]["values"].update(learning_rate=[0.01, 0.005]))
    assert jobs.get("train") == 1 and "strategy_round" not in jobs, jobs


def test_changing_a_training_setting_trains_every_trial_anew(copied):
    # New trial ids for all: the grid's 2, random's 2 and Hyperband's first rounds (2 + 2) are
    # planned at once; Bayesian, TPE, GP and Hyperband's promotion start over from their first
    # rounds; no table of the old settings is reused.
    jobs, _ = dry_run(copied, lambda c: c["training"].update(epochs=2))
    assert jobs.get("train") == 8 and jobs.get("strategy_round") == 4 and jobs.get("strategy_table") == 7, jobs


def test_a_new_comment_in_the_config_changes_nothing(copied):
    with changed(copied, None) as workdir:
        path = workdir / "config.yaml"
        path.write_text("# re-saved with a comment\n" + path.read_text())
        result = snakemake(workdir, "-n")
    assert "Nothing to be done" in result.stdout + result.stderr


def trials_of(workdir) -> pd.DataFrame:
    return pd.read_csv(workdir / "results" / "tiny" / "trials.csv")


def test_a_plan_changed_and_changed_back_gives_the_first_plans_results(copied):
    # Trials are cached; the tables, the aggregate and the published final model follow the
    # plan both ways, without metadata and whatever the files' ages.
    workdir, _ = copied
    first = trials_of(workdir)
    final = (workdir / "results" / "tiny" / "final" / "test_metrics.json").read_text()
    output = run(copied, random_trials(3))
    assert ran(output, "train") == 1, output[-3000:]
    assert len(trials_of(workdir)) == len(first) + 1
    jobs, _ = dry_run(copied)
    assert "train" not in jobs and jobs.get("aggregate") == 1, jobs
    output = run(copied)
    assert ran(output, "train") == 0 and ran(output, "final") == 0, output[-3000:]
    pd.testing.assert_frame_equal(trials_of(workdir), first)
    assert (workdir / "results" / "tiny" / "final" / "test_metrics.json").read_text() == final
    assert "Nothing to be done" in dry_run(copied)[1]


def test_final_settings_changed_and_changed_back_retrain_only_the_final_model_once(copied):
    workdir, _ = copied
    published = workdir / "results" / "tiny" / "final" / "test_metrics.json"
    first = published.read_text()

    def no_decay(config):
        config["final"] = {**config.get("final", {}), "learning_rate_decay": "none"}

    output = run(copied, no_decay)
    assert ran(output, "final") == 1 and ran(output, "train") == 0, output[-3000:]
    assert json.loads(published.read_text())["learning_rate_decay"] == "none"
    output = run(copied)
    assert ran(output, "final") == 0 and ran(output, "publish_final") == 1, output[-3000:]
    assert published.read_text() == first
    assert "Nothing to be done" in dry_run(copied)[1]


def test_a_deleted_trial_file_is_trained_again_and_the_tables_follow(copied):
    workdir, _ = copied
    first = trials_of(workdir)
    trial = first.loc[first["strategy"] == "random", "trial_id"].iloc[0]
    (workdir / "results" / "tiny" / "trials" / trial / "metrics.csv").unlink()
    jobs, output = dry_run(copied)
    assert f"trial {trial} (random trial 1): metrics.csv is missing; it is built again" in output
    assert jobs.get("train") == 1 and jobs.get("strategy_table") == 1 and jobs.get("aggregate") == 1, jobs
    output = run(copied)
    assert ran(output, "train") == 1, output[-3000:]
    assert (workdir / "results" / "tiny" / "trials" / trial / "metrics.csv").exists()
    # a seeded trial trains to the same result
    columns = ["strategy", "trial_id", "objective_value", "status"]
    pd.testing.assert_frame_equal(trials_of(workdir)[columns], first[columns])
    assert "Nothing to be done" in dry_run(copied)[1]


def test_a_retried_train_job_puts_back_what_its_earlier_attempt_finished(copied):
    # As when a bundle of trials (one Slurm job) failed because another trial in it died:
    # Snakemake deletes the outputs of every trial in the bundle and runs them all again
    # (attempt 2); one that had finished is put back, not trained again.
    workdir, _ = copied
    out = workdir / "results" / "tiny"
    trial = trials_of(workdir)["trial_id"].iloc[0]
    target = f"results/tiny/trials/{trial}/metrics.csv"
    before = {name: (out / "trials" / trial / name).read_bytes() for name in ("metrics.csv", "model.keras")}
    output = run(copied, None, "--forcerun", target, "--until", "train", "--attempt", "2")
    assert ran(output, "train") == 1, output[-3000:]
    log = (out / "logs" / "trials" / f"{trial}.log").read_text()
    assert "kept: trained by an earlier attempt of this job, not trained again" in log and "fit:" not in log, log
    assert {name: (out / "trials" / trial / name).read_bytes() for name in before} == before
    # a first attempt (a user's --forcerun) trains, whatever an earlier run kept
    output = run(copied, None, "--forcerun", target, "--until", "train")
    log = (out / "logs" / "trials" / f"{trial}.log").read_text()
    assert "kept:" not in log and "fit: epochs 1 to 1" in log, log
    run(copied)  # the tables and the rest follow the retrained trial again


def test_a_damaged_model_is_named_with_the_command_that_builds_it_again(copied):
    workdir, _ = copied
    out = workdir / "results" / "tiny"
    trial = trials_of(workdir)["trial_id"].iloc[0]
    for model in (out / "trials" / trial / "model.keras", out / "final" / "model.keras"):
        model.write_bytes(model.read_bytes()[:100])
    _, output = dry_run(copied)
    forcerun = {
        "trial": f"--forcerun results/tiny/trials/{trial}/metrics.csv",
        "final": "--forcerun results/tiny/final/model.keras",
    }
    for command in forcerun.values():
        assert f"to build it again: snakemake --cores all {command}" in output, output[-3000:]
    output = run(copied, None, "--forcerun", *(c.split()[1] for c in forcerun.values()))
    assert ran(output, "train") == 1 and ran(output, "final") == 0, output[-3000:]
    record = json.loads((out / "final" / "test_metrics.json").read_text())
    from snaketune.core.identity import file_sha256

    assert file_sha256(out / "final" / "model.keras") == record["model_sha256"]
    assert "Nothing to be done" in dry_run(copied)[1]


def test_a_change_to_the_workflows_own_code_retrains_nothing(tmp_path, mnist_path):
    # A `git pull` that changes scripts/: Snakemake's "code" rerun trigger is off in the
    # workflow profile. A copy of the workflow runs a two-trial study, its train script changes.
    from conftest import ROOT, TINY

    workflow = tmp_path / "workflow"
    workflow.mkdir()
    for name in ("Snakefile", "environment.yml"):
        shutil.copy2(ROOT / name, workflow / name)
    for name in ("rules", "scripts", "snaketune", "config", "profiles", "report"):
        shutil.copytree(ROOT / name, workflow / name, ignore=shutil.ignore_patterns("__pycache__"))
    study = tmp_path / "study"
    study.mkdir()
    write_config(
        study,
        {
            **TINY,
            "data": {**TINY["data"], "path": str(mnist_path)},
            "final": {"enabled": False},
            "strategies": {"random": TINY["strategies"]["random"]},
        },
    )

    def snakemake_here(*args):
        import subprocess

        result = subprocess.run(
            [shutil.which("snakemake"), "-s", str(workflow / "Snakefile"), "--configfile", "config.yaml", *args],
            cwd=study,
            capture_output=True,
            text=True,
            timeout=1200,
        )
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
        return result.stdout + result.stderr

    snakemake_here("--cores", "2")
    with (workflow / "scripts" / "train.py").open("a") as fh:
        fh.write("# a comment a new release added\n")
    assert "Nothing to be done" in snakemake_here("-n")
