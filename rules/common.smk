# Configuration checks and input functions shared by the rule files.
import inspect
import json
import os
import sys
from pathlib import Path

from snakemake.exceptions import WorkflowError
from snakemake.sourcecache import LocalSourceFile

# The workflow's own files (the schema, the default study, the `snaketune` package, and, through
# Snakemake, the scripts, report and environment.yml) are found beside this workflow; the
# study's config, its model code and data, and results/ are the working directory's. Used as
# a module of a user's Snakefile, workflow.basedir is the user's folder, not this workflow's:
# workflow.current_basedir is the folder of the file being read (rules/).
HERE = workflow.current_basedir
WORKFLOW_DIR = Path(HERE).parent if isinstance(HERE, LocalSourceFile) else None

# Jobs import the `snaketune` package that sits beside this workflow, also on cluster nodes,
# where every job parses the workflow again. A workflow read from GitHub or GitLab has no
# folder here: its package must be installed (pip install).
if WORKFLOW_DIR is not None:
    sys.path.insert(0, str(WORKFLOW_DIR))
    os.environ.update(
        PYTHONPATH=os.pathsep.join(
            p for p in (str(WORKFLOW_DIR), os.environ.get("PYTHONPATH")) if p
        )
    )
try:
    import snaketune
except ModuleNotFoundError as error:
    if error.name != "snaketune":
        raise
    raise WorkflowError(
        f"snaketune: the workflow at {HERE} needs its Python package `snaketune`, which is not "
        "installed: pip install it from the same release as the workflow"
    ) from None

from snaketune.workflow.bundles import check_bundling, keep_going_inside
from snaketune.workflow.completion import check_complete
from snaketune.study.checks import check_model
from snaketune.study.config import load_study
from snaketune.trial.devices import check_local as check_local_devices
from snaketune.study.config_files import check_file
from snaketune.core.errors import ConfigError
from snaketune.trial.integrity import check_built
from snaketune.study.plan import Plan
from snaketune.workflow.resources import expected_cost, training_resources
from snaketune.search.schedule import identity_values
from snaketune.search.strategies import ALL
from snaketune.trial.outcome import read_record


def workflow_file(path):
    """A file of this workflow by its path from the workflow's folder: the file itself, or
    Snakemake's cached copy of a workflow read from GitHub or GitLab."""
    if WORKFLOW_DIR is not None:
        return str(WORKFLOW_DIR / path)
    return workflow.source_path(f"../{path}")


# The study: a --configfile, the config a user's Snakefile hands this workflow as a module, or
# else config/config.yaml in the working directory (where a deployed project keeps its own);
# without one there, this workflow's default study.
DEFAULT_CONFIG = (
    "config/config.yaml"
    if os.path.exists("config/config.yaml")
    else workflow_file("config/config.yaml")
)
SCHEMA = workflow_file("config/schema.yaml")

# Every check of the config, the data file and a user's build_model(hp) happens here, before
# any job: a job that fails takes its existing outputs with it, and a bad input must leave
# results/ as it was. Jobs parse the workflow again; the build_model check (TensorFlow, in a
# child process, remembered per file content) runs in the main process only.
try:
    # Snakemake reads config files leniently and reports a syntax error without the file
    # or line; read them strictly first: those read already (--configfile, the config of a
    # user's Snakefile that uses this workflow as a module) and the default that `configfile:`
    # below reads where neither is given. (A --configfile is read by Snakemake's command line
    # before this file, so a syntax error there still gets Snakemake's own message.)
    paths = list(workflow.configfiles)
    if not workflow.overwrite_configfiles:
        paths.append(DEFAULT_CONFIG)
    for path in dict.fromkeys(map(str, paths)):
        if os.path.exists(path):
            check_file(path)
except ConfigError as error:
    raise WorkflowError(str(error)) from None

# A study given with --configfile replaces the default study instead of merging into it
# (Snakemake would merge the two, so a user's space would inherit the default's entries).
# Snakemake skips this in a module that was given a config.
if not workflow.overwrite_configfiles:

    configfile: DEFAULT_CONFIG


try:
    STUDY = load_study(
        config,
        SCHEMA,
        # The --config values, typed again (see snaketune/study/config_files.py). A module's config
        # may be a part of the user's (config["snaketune"]): their --config keys that are not
        # the study's are theirs. In a workflow of its own, `config` holds every key given.
        overrides={
            key: value
            for key, value in workflow.config_settings.config.items()
            if key in config
        },
        cache_dir=Path(".snakemake") / "snaketune",
    )
    if workflow.is_main_process:
        check_model(STUDY, Path(".snakemake") / "snaketune" / "model")
except ConfigError as error:
    raise WorkflowError(str(error)) from None

PLAN = Plan(STUDY)
OUT = PLAN.out
ENV = "../environment.yml"
RESOURCES = STUDY.config["resources"]
# a trial that dies in a bundle of trials does not stop the others (see snaketune/workflow/bundles.py)
keep_going_inside(workflow)
BEST_PARAMS = f"{OUT}/best_params.json"


wildcard_constraints:
    trial="[0-9a-f]{12}",
    round="[0-9]+",
    key="[0-9a-f]{8}",
    tkey="[0-9a-f]{8}",
    fkey="[0-9a-f]{8}",
    table="(replicate_[0-9]+/)?[a-z]+(/[a-z0-9_]+)?",
    strategy="[a-z]+",
    series="[a-z0-9_]+",


def per_job(func):
    """An input, params or resources function that Snakemake calls once per trial job.

    Snakemake inspects such a function's signature on every call; with 10,000 trials that
    is seconds of every dry run. It takes a precomputed answer where one is given
    (`overwrite_function_params`); where that hook is missing, it inspects as before.
    """
    try:
        from snakemake.common import overwrite_function_params
    except ImportError:
        return func
    overwrite_function_params(func, inspect.signature(func).parameters)
    return func


def made(producer, path, **wildcards):
    """`path`, which the checkpoint `producer` writes: taken from disk where it exists, else
    awaited.

    Snakemake's `checkpoints.<name>.get()` fails until the checkpoint has been seen in this
    run, so while it decides what is stale, a job whose inputs come from a checkpoint looks
    as if it had only the checkpoint's output as input: with its own output present, it is
    taken to be up to date and a new or rebuilt trial below it goes unseen. The checkpoints'
    outputs are named by what decides their content, so one that exists is the right one.
    """
    if not os.path.exists(path):
        producer.get(**wildcards)  # raises until the checkpoint has run
    return path


def space_file():
    """Trial ids derive from the discovered search space."""
    return made(checkpoints.space, PLAN.space_file)


def round_file(plan, name, series, round_):
    return made(
        checkpoints.strategy_round,
        plan.round_path(name, series, round_),
        strategy=name,
        key=plan.round_key(name),
        series=series,
        round=round_,
    )


def series_trials(plan, name, series, rounds=None, wait=True):
    """(trial id, round) of one series of a strategy, round by round (all its rounds, or the
    first `rounds`), and the round files they come from: a round that learns from the trials
    before it waits for its checkpoint.

    Params functions pass wait=False and stop at the first round not yet written: a round
    written by a job that ends between the evaluation of a job's input and of its params
    would otherwise make the params ask for a checkpoint the input did not (local jobs end
    while Snakemake builds the DAG). A job whose input waited is built again when the
    checkpoint has run, so what its params saw then is never used."""
    proposer = plan.strategy(name).for_series(series)
    trials, files = [], []
    for r in range(proposer.rounds() if rounds is None else rounds):
        if proposer.from_history(r):
            path = plan.round_path(name, series, r)
            if not wait and not os.path.exists(path):
                break
            path = round_file(plan, name, series, r)
            ids = plan.read_round(path)
            files.append(path)
        else:
            ids = plan.proposed(name, series, r)
        trials += [(tid, r) for tid in ids]
    return trials, files


def table_trials(table, wait=True):
    """(trial id, round) in the table's order (round None for a strategy of one round
    proposed from the space alone: grid, random), and the round files they come from."""
    space_file()
    plan, name, series = PLAN.for_table(table)
    trials, files = series_trials(plan, name, series, wait=wait)
    proposer = plan.strategy(name).for_series(series)
    if series == ALL and proposer.rounds() == 1 and not proposer.from_history(0):
        trials = [(tid, None) for tid, _ in trials]
    limit = proposer.limit()
    return (trials[:limit] if limit else trials), files


def table_inputs(wildcards):
    if wildcards.tkey != PLAN.table_key(wildcards.table):
        raise WorkflowError(
            f"{OUT}/strategies/{wildcards.table}/{wildcards.tkey}.csv is not a table of study "
            f"{STUDY.name} as configured now (its table is {PLAN.table_path(wildcards.table)})"
        )
    trials, rounds = table_trials(wildcards.table)
    return {
        "metrics": [PLAN.trial_file(tid, "metrics.csv") for tid, _ in trials],
        "rounds": rounds,
        "space": space_file(),
    }


def table_membership(wildcards):
    """[trial number, round, trial id, values, schedule, series] of each trial of one table."""
    _, _, series = PLAN.for_table(wildcards.table)
    trials, _ = table_trials(wildcards.table, wait=False)
    return [
        [number, round_, tid, PLAN.values_of(tid), PLAN.schedule_of(tid), series]
        for number, (tid, round_) in enumerate(trials, start=1)
    ]


def round_history(wildcards):
    """[trial id, values, schedule, round] of every trial of the rounds before this one in
    its series, in order: what the round learns from."""
    space_file()
    plan = PLAN.by_key(wildcards.key, wildcards.strategy)
    trials, _ = series_trials(plan, wildcards.strategy, wildcards.series, int(wildcards.round), wait=False)
    return [[tid, PLAN.values_of(tid), PLAN.schedule_of(tid), r] for tid, r in trials]


def round_inputs(wildcards):
    space_file()
    plan = PLAN.by_key(wildcards.key, wildcards.strategy)
    trials, files = series_trials(plan, wildcards.strategy, wildcards.series, int(wildcards.round))
    return {
        "metrics": [PLAN.trial_file(tid, "metrics.csv") for tid, _ in trials],
        "rounds": files,
        "space": ancient(PLAN.space_file),
    }


# Content-addressed: the trial id already covers the data settings, so rewriting the
# prepared arrays (a rerun of `data`) must not retrain every cached trial. One input per
# trial, the folder, keeps the DAG of a 10,000-trial study quick to build.
TRIAL_DATA = ancient(PLAN.data_dir)


@per_job
def trial_inputs(wildcards):
    """A promoted trial also needs its parent, whose model it resumes."""
    parent = PLAN.schedule_of(wildcards.trial).get("parent")
    if parent:
        return [TRIAL_DATA, ancient(PLAN.trial_file(parent, "metrics.csv"))]
    return [TRIAL_DATA]


@per_job
def trial_values(wildcards):
    """The trial's hyperparameters and schedule in the form its id digests (see
    snaketune.search.schedule.identity_values)."""
    tid = wildcards.trial
    flat = identity_values(PLAN.values_of(tid), PLAN.schedule_of(tid))
    # sorted: Snakemake compares params as text, and the values' order carries no meaning
    return dict(sorted(flat.items()))


@per_job
def trial_settings(wildcards):
    return PLAN.settings_of(wildcards.trial)


@per_job
def trial_priority(wildcards):
    """The longest trials first (see snaketune.workflow.resources.expected_cost)."""
    tid = wildcards.trial
    return expected_cost(PLAN.values_of(tid), PLAN.schedule_of(tid), PLAN.settings_of(tid)["epochs"])


# Only what a study needs is a function of the trial: each function call costs every trial
# job of a large study's DAG; the value a constant gives is the same.
TRAIN_INPUT = trial_inputs if PLAN.schedules else TRIAL_DATA
TRAIN_SETTINGS = trial_settings if STUDY.replicates > 1 else PLAN.settings
TRAINING_RESOURCES = {
    name: per_job(value) if callable(value) else value
    for name, value in training_resources(RESOURCES, PLAN.max_trial_epochs).items()
}


def best_trial():
    """The study's best trial, once the aggregate of the current plan exists (its marker names
    the plan); until then Snakemake waits for the aggregate."""
    if not (os.path.exists(PLAN.plan_file) and os.path.exists(BEST_PARAMS)):
        checkpoints.aggregate.get()  # raises until the aggregate has run
    return json.loads(Path(BEST_PARAMS).read_text())["overall"]["trial_id"]


def final_configuration(wildcards):
    """What the final model in final/<trial>/<key>/ retrains: that trial's configuration and
    the epoch it peaked at. The key holds the final and training settings."""
    if PLAN.final_key(wildcards.trial) != wildcards.fkey:
        raise WorkflowError(
            f"{OUT}/final/{wildcards.trial}/{wildcards.fkey}/ is not a final model of study {STUDY.name} "
            f"with its settings now (that is {OUT}/final/{wildcards.trial}/{PLAN.final_key(wildcards.trial)}/)"
        )
    record = read_record(PLAN.trial_file(wildcards.trial, "metrics.csv"))
    return {
        "trial_id": wildcards.trial,
        "hyperparameters": PLAN.values_of(wildcards.trial),
        "objective_epoch": int(float(record["objective_epoch"])),
    }


def final_model(wildcards):
    """The final model of the best trial, and best_params.json: published again whenever the
    aggregate has run (a change of the final settings included), so that a winner changing
    back to an earlier one (whose final model is older than the published copy) is published
    too."""
    trial = best_trial()
    folder = f"{OUT}/final/{trial}/{PLAN.final_key(trial)}"
    return {
        "metrics": f"{folder}/test_metrics.json",
        "model": f"{folder}/model.keras",
        "best": BEST_PARAMS,
    }


def summary_inputs(wildcards):
    inputs = {"trials": f"{OUT}/trials.csv", "best": BEST_PARAMS, "space": f"{OUT}/space.json"}
    if STUDY.config["final"]["enabled"]:
        inputs["final"] = FINAL_OUTPUTS[0]
    return inputs


PLOTS = [
    f"{OUT}/plots/{name}.png"
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
]
FINAL_OUTPUTS = [f"{OUT}/final/test_metrics.json", f"{OUT}/final/model.keras"]


def study_outputs():
    outputs = [f"{OUT}/trials.csv", BEST_PARAMS, f"{OUT}/summary.md", f"{OUT}/optuna.journal", PLAN.plan_file, *PLOTS]
    if STUDY.config["final"]["enabled"]:
        outputs += FINAL_OUTPUTS
    return outputs + list(MISSING)


# What was built and has since gone missing is built again, what was damaged is named: see
# snaketune/trial/integrity.py. (Snakemake would not rebuild a deleted file while what was built
# from it is up to date, nor notice a truncated model.)
MISSING, DAMAGED = {}, {}
if workflow.is_main_process:
    MISSING, DAMAGED = check_built(PLAN, final=STUDY.config["final"]["enabled"])
    for path, why in MISSING.items():
        print(f"snaketune: {why}; it is built again", file=sys.stderr)
    for path, why in DAMAGED.items():
        print(
            f"snaketune: {why}; to build it again: snakemake --cores all --forcerun {path}",
            file=sys.stderr,
        )


# Snakemake can report success with a checkpoint's downstream jobs never run: the run then
# fails, naming the files and the command that builds them (see snaketune/workflow/completion.py).
onsuccess:
    check_complete(workflow)


# Checked before the first job, once the executor and the groups are known (not while this
# file is read): local training jobs with `resources.gpu` each take a device of this machine
# (see snaketune/trial/devices.py).
onstart:
    if workflow.local_exec:
        try:
            check_local_devices(RESOURCES["gpu"], RESOURCES["trials_per_gpu"])
        except ValueError as error:
            raise WorkflowError(f"config: resources.gpu: {error}") from None
    # groups are known only once the command line is (see snaketune/workflow/bundles.py)
    try:
        check_bundling(workflow, STUDY.enabled_strategies)
    except ValueError as error:
        raise WorkflowError(str(error)) from None
