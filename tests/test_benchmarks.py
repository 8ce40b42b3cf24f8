"""The benchmark harness (benchmarks/run.py): its grids and configs, and a smoke run on a tiny set.

No timing is asserted: only that the harness produces every figure.
"""

import json

import pytest

from benchmarks import run


def test_the_default_grid_has_exactly_the_asked_configurations():
    assert run.default_grid(12) == {"learning_rate": [0.01, 0.001, 0.0001], "batch_size": [32, 64, 128, 256]}
    for n in range(1, 30):
        grid = run.default_grid(n)
        assert run.grid_size(grid) == n
        assert len(set(grid["learning_rate"])) == len(grid["learning_rate"])


def test_a_grid_from_the_command_line():
    assert run.parse_grid(["learning_rate=0.01,0.001", "units=64,128"]) == {
        "learning_rate": [0.01, 0.001],
        "units": [64, 128],
    }
    with pytest.raises(ValueError):
        run.parse_grid(["learning_rate"])


def test_snaketunes_grid_strategy_proposes_each_configuration_once(mnist_path):
    config = run.study_config(data_path=mnist_path, epochs=3, grid=run.default_grid(12))
    configurations = run.grid_configurations(config)
    assert len(configurations) == 12
    assert len({json.dumps(c, sort_keys=True) for c in configurations}) == 12
    assert {c["units"] for c in configurations} == {256}  # the default study's default
    assert config["strategies"]["random"]["enabled"] is False
    assert config["final"]["enabled"] is False


def test_dry_run_studies_of_many_distinct_learning_rates(mnist_path):
    rates = run.learning_rates(10000, 1.1e-4, 0.09)
    assert len(set(rates)) == 10000 and min(rates) >= 1e-4 and max(rates) <= 0.1
    config = run.study_config(data_path=mnist_path, epochs=1, grid={"learning_rate": rates[:500]})
    assert len(run.grid_configurations(config)) == 500


@pytest.fixture(scope="module")
def smoke(tmp_path_factory, mnist_path):
    """The whole harness on 2 configurations of 300 images, 1 epoch, and a 20-trial dry run;
    Keras Tuner's side only where tensorboard is installed (benchmarks/requirements.txt)."""
    out = tmp_path_factory.mktemp("bench")
    results = run.benchmark(
        epochs=[1],
        grid=run.default_grid(2),
        cores=[2],
        out=out,
        data_path=mnist_path,
        subset=300,
        dry_run_sizes=[20],
        keras_tuner=run.tensorboard_available(),
        workdir=out / "work",
        import_probe_repeats=1,
        cold_too=True,
        dry_run_repeats=2,
        log=lambda *_: None,
    )
    return out, results


@pytest.mark.workflow
def test_the_harness_reports_the_workflows_figures(smoke):
    out, results = smoke
    assert json.loads((out / "results.json").read_text())["sets"][0]["epochs"] == 1
    wf, cold = results["sets"][0]["workflow"]
    assert (wf["forkserver"], cold["forkserver"]) == (True, False)
    assert cold["trials_run"] == 2 and (out / "workflow_trials_e1_c2_cold.csv").exists()
    assert all(t["max_rss_mb"] > 100 for t in wf["trials"] + cold["trials"])
    assert wf["wall_seconds"] > 0 and wf["cores"] == 2
    assert wf["trials_run"] == 2 and wf["failed_trials"] == 0
    assert wf["same_configurations"]
    for figure in ("overhead_seconds", "load_seconds", "fit_seconds", "job_seconds"):
        assert wf[figure]["n"] == 2, figure
    assert all(t["job_seconds"] > t["fit_seconds"] > 0 for t in wf["trials"])
    assert results["import_probe"]["import_seconds"]["median"] > 0
    assert (out / "workflow_trials_e1_c2.csv").exists()
    # from the command's start: the first trial's start, and what runs after the last trial
    assert 0 < wf["first_trial_started_seconds"] < wf["wall_seconds"]
    assert 0 < wf["after_last_trial_seconds"] < wf["wall_seconds"]
    assert wf["slurm"] == "as-is" and wf["slurm_client"]["plugin_installed"] in (True, False)
    text = (out / "report.txt").read_text()
    assert "overhead" in text and "snakemake -n" in text and "without the fork server" in text
    assert "1st trial s" in text and "slurm client as-is" in text


@pytest.mark.workflow
def test_the_harness_times_dry_runs(smoke):
    _, results = smoke
    (dry,) = results["dry_runs"]
    assert dry["trials"] == 20 and dry["seconds"] > 0 and dry["quiet_seconds"] > 0
    assert dry["planned_jobs"]["train"] == 20
    # Snakemake's own cost for 20 jobs, timed in the same rounds as the study
    assert set(dry["runs"]) == {"study", "minimal", "shaped"}
    assert all(len(times) == 2 and min(times) > 0 for times in dry["runs"].values())
    for kind in ("minimal", "shaped"):
        assert dry["references"][kind]["jobs"] == 20, kind
        assert dry["references"][kind]["seconds"] > 0, kind


@pytest.mark.workflow
@pytest.mark.skipif(
    not run.tensorboard_available(),
    reason="Keras Tuner's tuner.search() imports tensorboard, which requirements.txt does not "
    "install: pip install -r benchmarks/requirements.txt",
)
def test_the_harness_compares_with_keras_tuner(smoke):
    out, results = smoke
    (kt,) = results["sets"][0]["keras_tuner"]
    assert kt["wall_seconds"] > 0 and kt["trials_run"] == 2
    assert kt["same_configurations"]
    assert kt["fit_seconds"]["n"] == 2
    warm, cold = results["sets"][0]["ratios"]
    assert (warm["forkserver"], cold["forkserver"]) == (True, False)
    assert warm["workflow_over_keras_tuner"] > 0 and cold["workflow_over_keras_tuner"] > 0
    assert (out / "keras_tuner_trials_e1_spe1.csv").exists()


def test_the_machine_without_slurms_client_or_with_one_that_reaches_no_controller(tmp_path):
    import os
    import shutil

    from benchmarks import slurm_client

    absent, folder = slurm_client.environment("absent", dict(os.environ))
    try:
        assert not any(shutil.which(c, path=absent["PATH"]) for c in ("scontrol", "sinfo", "sbatch"))
        assert shutil.which("python", path=absent["PATH"]) and shutil.which("snakemake", path=absent["PATH"])
        assert slurm_client.describe(absent)["client"] is False
    finally:
        shutil.rmtree(folder)
    if not shutil.which("scontrol"):
        pytest.skip("Slurm's client is not installed")
    unreachable, folder = slurm_client.environment("unreachable", dict(os.environ))
    try:
        described = slurm_client.describe(unreachable)
        assert described["client"] is True and described["controller_answered"] is False
    finally:
        shutil.rmtree(folder)
