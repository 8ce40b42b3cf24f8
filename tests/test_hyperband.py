"""Hyperband: the schedule and promotions equal Keras Tuner's HyperbandOracle for the same settings."""

import math
from collections import defaultdict

import pytest

from snaketune.search.objective import Objective
from snaketune.search.schedule import KERAS_TUNER_NAMES
from snaketune.search.space import Space
from snaketune.search.strategies import Finished
from snaketune.search.strategies.hyperband import Bracket, Hyperband

# Keras Tuner's names for a trial's schedule among its values
EPOCHS, INITIAL_EPOCH, PARENT = (KERAS_TUNER_NAMES[k] for k in ("epochs", "initial_epoch", "parent"))


def hyperband(max_epochs, factor=3, iterations=1, seed=0):
    return Hyperband({"max_epochs": max_epochs, "factor": factor, "iterations": iterations, "seed": seed}, OBJECTIVE)


def hyperparameters(values):
    return {k: v for k, v in values.items() if not k.startswith("tuner/")}


OBJECTIVE = Objective("val_accuracy", "max")


def score(values):
    """A made-up validation accuracy; None fails the trial (one configuration in seven)."""
    if values["units"] % 7 == 0:
        return None
    return ((values["units"] * 7919 + values[EPOCHS] * 104729) % 1000) / 1000


def keras_tuner_run(max_epochs, factor, iterations):
    """Drive HyperbandOracle one trial at a time, as Keras Tuner's own search does; return its
    trials as dicts in order, each with the iteration and bracket it belongs to."""
    import keras_tuner as kt
    from keras_tuner.engine.trial import Trial

    hps = kt.HyperParameters()
    hps.Int("units", 1, 100000)
    oracle = kt.oracles.HyperbandOracle(
        objective=kt.Objective(OBJECTIVE.name, OBJECTIVE.direction),
        max_epochs=max_epochs,
        factor=factor,
        hyperband_iterations=iterations,
        seed=1,
        hyperparameters=hps,
    )
    trials, by_id, iteration, previous_bracket = [], {}, 0, None
    while True:
        tid = f"t{len(trials):04d}"
        proposal = oracle.populate_space(tid)
        if proposal["status"] != "RUNNING":
            assert proposal["status"] == "STOPPED"
            return trials
        values = proposal["values"]
        if PARENT in values:  # tuner/bracket is not reliable on promoted trials
            bracket = by_id[values[PARENT]]["bracket"]
        else:
            bracket = values["tuner/bracket"]
            if previous_bracket is not None and bracket > previous_bracket:
                iteration += 1
            previous_bracket = bracket
        value = score(values)
        trial = Trial(hyperparameters=hps.copy(), trial_id=tid, status="FAILED" if value is None else "COMPLETED")
        trial.hyperparameters.values = dict(values)
        trial.score = value
        oracle.trials[tid] = trial
        record = {
            "id": tid,
            "values": values,
            "iteration": iteration,
            "bracket": bracket,
            "round": values["tuner/round"],
            "score": value,
        }
        by_id[tid] = record
        trials.append(record)


SETTINGS = [(27, 3, 2), (9, 3, 1), (10, 2, 1), (81, 3, 1), (5, 4, 1), (2, 2, 3)]


@pytest.mark.parametrize("max_epochs,factor,iterations", SETTINGS)
def test_brackets_rounds_trial_counts_and_epochs_equal_keras_tuners(max_epochs, factor, iterations):
    kt_trials = keras_tuner_run(max_epochs, factor, iterations)
    ours = hyperband(max_epochs, factor, iterations)

    rungs = defaultdict(list)
    for t in kt_trials:
        rungs[t["iteration"], t["bracket"], t["round"]].append(t)
    assert [(b.iteration, b.number) for b in ours.brackets()] == list(
        dict.fromkeys((t["iteration"], t["bracket"]) for t in kt_trials)
    )

    for bracket in ours.brackets():
        series = ours.for_series(bracket.name)
        assert series.rounds() == bracket.number + 1 and not series.from_history(0) and series.from_history(1)
        first = rungs[bracket.iteration, bracket.number, 0]
        assert len(first) == series.size(0)
        assert {(t["values"][INITIAL_EPOCH], t["values"][EPOCHS]) for t in first} == {
            (0, ours.epochs(bracket.number, 0))
        }
        history = []
        for round_ in range(1, bracket.number + 1):
            before = rungs[bracket.iteration, bracket.number, round_ - 1]
            history += [
                Finished(
                    t["id"],
                    hyperparameters(t["values"]),
                    {},
                    round_ - 1,
                    "failed" if t["score"] is None else "completed",
                    math.nan if t["score"] is None else t["score"],
                )
                for t in before
            ]
            promoted = series.propose(None, history, series.size(round_))
            theirs = rungs[bracket.iteration, bracket.number, round_]
            assert [p.schedule["parent"] for p in promoted] == [t["values"][PARENT] for t in theirs], (bracket, round_)
            assert [(p.schedule["initial_epoch"], p.schedule["epochs"]) for p in promoted] == [
                (t["values"][INITIAL_EPOCH], t["values"][EPOCHS]) for t in theirs
            ]
            assert [p.values for p in promoted] == [hyperparameters(t["values"]) for t in theirs]
            # the next round promotes from what this one really trained, as Keras Tuner does
            rungs[bracket.iteration, bracket.number, round_] = theirs
    assert sum(len(v) for v in rungs.values()) == len(kt_trials)


def test_a_failed_round_promotes_fewer_as_keras_tuner_does():
    # 9 trials, 3 to promote: with 2 failed, 7 completed, of which 6 would be dropped anyway
    bracket = hyperband(9, 3).for_series("i0_b2")
    finished = [Finished(f"t{i}", {"units": i}, {}, 0, "failed" if i < 2 else "completed", i / 10) for i in range(9)]
    assert [p.schedule["parent"] for p in bracket.propose(None, finished, bracket.size(1))] == ["t8"]


def test_first_rounds_are_distinct_and_raising_iterations_keeps_them():
    space = Space.from_config(
        {
            "units": {"type": "int", "min": 1, "max": 1000},
            "lr": {"type": "float", "min": 1e-4, "max": 1e-1, "sampling": "log"},
        }
    )

    def first_rounds(strategy):
        return {b: strategy.for_series(b).propose(space, [], strategy.for_series(b).size(0)) for b in strategy.series()}

    one = first_rounds(hyperband(9, 3, iterations=1, seed=5))
    two = first_rounds(hyperband(9, 3, iterations=2, seed=5))
    assert all(two[b] == configs for b, configs in one.items())
    assert all(Bracket.parse(b).name == b for b in two)
    everything = [repr(sorted(p.values.items())) for configs in two.values() for p in configs]
    assert len(everything) == len(set(everything)) == 2 * (9 + 5 + 3)


def test_a_promoted_trial_resumes_its_parents_model_and_history(tiny_data, tiny_settings, tmp_path):
    import keras
    import pandas as pd

    from snaketune.trial.train import run_trial

    config = {"learning_rate": 0.01, "batch_size": 32, "units": 32}
    parent = run_trial(
        study="tiny",
        trial_id="parent",
        values=config,
        schedule={"epochs": 1, "initial_epoch": 0},
        settings=tiny_settings,
        data_dir=tiny_data,
        out_dir=tmp_path / "parent",
    )
    child = run_trial(
        study="tiny",
        trial_id="child",
        values=config,
        schedule={"epochs": 3, "initial_epoch": 1, "parent": "parent"},
        settings=tiny_settings,
        data_dir=tiny_data,
        out_dir=tmp_path / "child",
    )
    assert parent["status"] == child["status"] == "completed", child["error"]
    assert (parent["epochs_run"], parent["cumulative_epochs"]) == (1, 1)
    assert (child["epochs_run"], child["cumulative_epochs"]) == (2, 3)

    before = pd.read_csv(tmp_path / "parent" / "history.csv")
    after = pd.read_csv(tmp_path / "child" / "history.csv")
    assert after["epoch"].tolist() == [1, 2, 3]
    pd.testing.assert_frame_equal(after.iloc[:1], before)  # the parent's epoch, as it was
    assert after["loss"].iloc[-1] <= before["loss"].iloc[-1]

    steps_per_epoch = math.ceil(150 / 32)  # 200 images, a quarter held out for validation
    model = keras.models.load_model(tmp_path / "child" / "model.keras")
    assert int(model.optimizer.iterations.numpy()) == 3 * steps_per_epoch


@pytest.mark.parametrize("damage", ["truncated", "missing", "overwritten"])
def test_a_damaged_parent_fails_the_job_and_is_never_recorded_as_a_failed_configuration(
    damage, tiny_data, tiny_settings, tmp_path
):
    # A parent's model that is missing or not what its job wrote (its sha256 is in the
    # parent's metrics) is no property of the child's configuration: the job fails, naming
    # the file and the command that trains the parent again, and the child records nothing.
    from snaketune.core.errors import DamagedInput
    from snaketune.trial.train import run_trial

    config = {"learning_rate": 0.01, "batch_size": 32, "units": 32}
    run_trial(
        study="tiny",
        trial_id="parent",
        values=config,
        schedule={"epochs": 1, "initial_epoch": 0},
        settings=tiny_settings,
        data_dir=tiny_data,
        out_dir=tmp_path / "parent",
    )
    model = tmp_path / "parent" / "model.keras"
    if damage == "truncated":
        model.write_bytes(model.read_bytes()[:100])
    elif damage == "missing":
        model.unlink()
    else:
        data = bytearray(model.read_bytes())
        data[-10] ^= 0xFF  # same size: only the sha256 tells
        model.write_bytes(bytes(data))
    with pytest.raises(DamagedInput) as error:
        run_trial(
            study="tiny",
            trial_id="child",
            values=config,
            schedule={"epochs": 3, "initial_epoch": 1, "parent": "parent"},
            settings=tiny_settings,
            data_dir=tiny_data,
            out_dir=tmp_path / "child",
        )
    assert str(model) in str(error.value)
    assert f"--forcerun {tmp_path / 'parent' / 'metrics.csv'}" in str(error.value)
    assert not (tmp_path / "child" / "metrics.csv").exists()


def test_a_fits_missing_parent_is_named_by_the_parents_id_and_the_fit(tiny_data, tiny_settings, tmp_path):
    # a promoted configuration's second execution resumes its parent's second execution
    from snaketune.core.errors import DamagedInput
    from snaketune.trial.train import run_trial

    (tmp_path / "parent").mkdir()  # the parent trained its first execution only
    with pytest.raises(DamagedInput) as error:
        run_trial(
            study="tiny",
            trial_id="child",
            values={"learning_rate": 0.01, "batch_size": 32, "units": 32},
            schedule={"epochs": 3, "initial_epoch": 1, "parent": "parent"},
            settings=tiny_settings,
            data_dir=tiny_data,
            out_dir=tmp_path / "child" / "execution_1",
            fit_name="execution_1",
        )
    assert str(error.value).startswith("trial parent (fit execution_1): FileNotFoundError")
    assert f"--forcerun {tmp_path / 'parent' / 'execution_1' / 'metrics.csv'}" in str(error.value)


# -- the tiny Hyperband study, end to end (snakemake: marked workflow) -----------------------
HYPERBAND = {"max_epochs": 3, "factor": 3, "seed": 4}


@pytest.fixture(scope="module")
def hyperband_study(tmp_path_factory, mnist_path):
    """The tiny study with random search and Hyperband (max_epochs 3: bracket 1 trains 3
    configurations for 1 epoch and promotes the best to 3; bracket 0 trains 2 for 3 epochs),
    two replicates of each."""
    from conftest import TINY, snakemake, write_config

    workdir = tmp_path_factory.mktemp("hyperband")
    config = {
        **TINY,
        "data": {**TINY["data"], "path": str(mnist_path)},
        "strategies": {"random": TINY["strategies"]["random"], "hyperband": dict(HYPERBAND)},
        "final": {"enabled": False},
        "replicates": 2,
    }
    write_config(workdir, config)
    snakemake(workdir, "--cores", "2")
    return workdir, config


@pytest.mark.workflow
def test_a_tiny_hyperband_study_trains_its_brackets_and_promotes_the_best(hyperband_study):
    import pandas as pd

    from snaketune.report.aggregate import read_csv

    workdir, _ = hyperband_study
    out = workdir / "results" / "tiny"
    trials = read_csv(out / "trials.csv")
    hb = trials[(trials["strategy"] == "hyperband") & (trials["replicate"] == 0)]
    assert list(zip(hb["bracket"], hb["round"])) == [("i0_b1", 0)] * 3 + [("i0_b1", 1)] + [("i0_b0", 0)] * 2
    assert set(hb["status"]) == {"completed"}
    assert hb["epochs_run"].tolist() == [1, 1, 1, 2, 3, 3]
    assert hb["cumulative_epochs"].tolist() == [1, 1, 1, 3, 3, 3]
    assert hb["trial_number"].tolist() == list(range(1, 7))
    assert hb["strategy_epochs"].iloc[-1] == 11

    first = hb[(hb["bracket"] == "i0_b1") & (hb["round"] == 0)]
    promoted = hb[hb["round"] == 1].iloc[0]
    assert promoted["parent"] == first.loc[first["objective_value"].idxmax(), "trial_id"]
    parent_history = pd.read_csv(out / "trials" / promoted["parent"] / "history.csv")
    history = pd.read_csv(out / "trials" / promoted["trial_id"] / "history.csv")
    assert history["epoch"].tolist() == [1, 2, 3]
    pd.testing.assert_frame_equal(history.iloc[:1], parent_history)
    assert "tuner/" not in promoted["hyperparameters"]


@pytest.mark.workflow
def test_replicates_run_each_strategy_with_other_seeds_and_are_compared_with_their_spread(hyperband_study):
    from snaketune.report.aggregate import read_csv

    out = hyperband_study[0] / "results" / "tiny"
    trials = read_csv(out / "trials.csv")
    runs = trials.groupby(["strategy", "replicate"]).size().to_dict()
    assert runs == {("hyperband", 0): 6, ("hyperband", 1): 6, ("random", 0): 2, ("random", 1): 2}
    ids = [set(trials.loc[trials["replicate"] == r, "trial_id"]) for r in (0, 1)]
    assert not ids[0] & ids[1], "a replicate trains with its own seed, so its trials are its own"
    first = [set(trials.loc[(trials["replicate"] == r) & (trials["round"] == 0), "hyperparameters"]) for r in (0, 1)]
    assert first[0] != first[1], "a replicate's Hyperband samples other configurations"

    summary = (out / "summary.md").read_text()
    assert "## At equal compute" in summary and "mean over 2 replicates" in summary
    budget = int(trials.groupby(["strategy", "replicate"])["strategy_epochs"].max().min())
    assert f"within **{budget} epochs**" in summary and " ± " in summary
    assert (out / "plots" / "best_so_far_by_epochs.png").read_bytes()[:4] == b"\x89PNG"


@pytest.mark.workflow
@pytest.mark.parametrize("metadata", ["kept", "deleted"])
def test_a_hyperband_rerun_has_nothing_to_do(hyperband_study, metadata):
    import shutil

    from conftest import snakemake

    if metadata == "deleted":
        shutil.rmtree(hyperband_study[0] / ".snakemake", ignore_errors=True)
    result = snakemake(hyperband_study[0], "-n")
    assert "Nothing to be done" in result.stdout + result.stderr


@pytest.mark.workflow
def test_raising_iterations_trains_only_the_new_brackets(hyperband_study):
    # from the files alone, without .snakemake/
    import shutil

    from conftest import planned_jobs, snakemake, write_config

    workdir, config = hyperband_study
    shutil.rmtree(workdir / ".snakemake", ignore_errors=True)
    bigger = {**config, "strategies": {**config["strategies"], "hyperband": {**HYPERBAND, "iterations": 2}}}
    write_config(workdir, bigger)
    try:
        jobs = planned_jobs(snakemake(workdir, "-n").stdout)
    finally:
        write_config(workdir, config)
    # per replicate, round 0 of iteration 1's two brackets (3 + 2 trials) and its one
    # promotion round; nothing old
    assert jobs.get("train") == 10 and jobs.get("strategy_round") == 2, jobs
