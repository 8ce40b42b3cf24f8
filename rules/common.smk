# Configuration checks, and the input and params functions that the rule files share.
# They are short get_* functions that ask the plan (snaketune/study/plan.py), which owns the
# traversal of series, rounds and tables; every path under results/<study>/ comes from its
# layout (PLAN.paths, snaketune/core/layout.py). Only what needs Snakemake (its checkpoints)
# stays here.
import functools
import inspect
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
from snaketune.study.plan import NotInPlan, Plan
from snaketune.workflow.resources import expected_cost, training_resources


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
PATHS = PLAN.paths  # given wildcards ("{trial}"), the rules' patterns
ENV = "../environment.yml"
RESOURCES = STUDY.config["resources"]
# a trial that dies in a bundle of trials does not stop the others (see snaketune/workflow/bundles.py)
keep_going_inside(workflow)


wildcard_constraints:
    trial="[0-9a-f]{12}",
    round="[0-9]+",
    key="[0-9a-f]{8}",
    tkey="[0-9a-f]{8}",
    fkey="[0-9a-f]{8}",
    table="(replicate_[0-9]+/)?[a-z]+(/[a-z0-9_]+)?",
    strategy="[a-z]+",
    series="[a-z0-9_]+",
    fit="execution_[0-9]+|fold_[0-9]+_of_[0-9]+(_execution_[0-9]+)?",
    plan="executions_[0-9]+|folds_[0-9]+(_executions_[0-9]+)?",


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


def in_plan(func):
    """An input or params function whose NotInPlan (a path of the study as configured before)
    Snakemake reports as the study's error, without a traceback."""

    @functools.wraps(func)
    def wrapper(wildcards):
        try:
            return func(wildcards)
        except NotInPlan as error:
            raise WorkflowError(str(error)) from None

    return wrapper


# -- checkpoints ----------------------------------------------------------------------------
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


def round_file(path, **wildcards):
    """A round file, awaited from its checkpoint (the plan's `await_round`)."""
    return made(checkpoints.strategy_round, path, **wildcards)


def best_trial():
    """The study's best trial, once the aggregate of the current plan exists; until then
    Snakemake waits for the aggregate."""
    if not PLAN.aggregated():
        checkpoints.aggregate.get()  # raises until the aggregate has run
    return PLAN.best_trial()


# -- input and params functions -------------------------------------------------------------
@in_plan
def get_table_inputs(wildcards):
    PLAN.check_table(wildcards.table, wildcards.tkey)
    space = space_file()
    return {**PLAN.table_inputs(wildcards.table, await_round=round_file), "space": space}


def get_table_membership(wildcards):
    space_file()
    return PLAN.table_membership(wildcards.table)


def get_round_inputs(wildcards):
    """A round's trials before it and their rounds, the space, and the prepared data: a round
    that ended while the data job ran made Snakemake 9.27.1 drop the rest of the DAG and report
    success in some runs of examples/diabetes_regression.yaml (snakemake/snakemake#823), and in
    none with the round waiting for the data, which every trial needs first anyway."""
    space_file()
    w = wildcards
    inputs = PLAN.round_inputs(w.strategy, w.key, w.series, int(w.round), await_round=round_file)
    return {**inputs, "space": ancient(PLAN.space_file), "data": TRIAL_DATA}


def get_round_history(wildcards):
    space_file()
    w = wildcards
    return PLAN.round_history(w.strategy, w.key, w.series, int(w.round))


# Content-addressed: the trial id already covers the data settings, so rewriting the
# prepared arrays (a rerun of `data`) must not retrain every cached trial. One input per
# trial, the folder, keeps the DAG of a 10,000-trial study quick to build.
TRIAL_DATA = ancient(PLAN.data_dir)


@per_job
def get_trial_inputs(wildcards):
    """A promoted trial (or fit of one) also needs its parent's (same fit), whose model it resumes."""
    parent = PLAN.trial_parent(wildcards.trial, wildcards.get("fit"))
    return [TRIAL_DATA, ancient(parent)] if parent else [TRIAL_DATA]


@in_plan
def get_combine_inputs(wildcards):
    return PLAN.combine_inputs(wildcards.trial, wildcards.plan)


@per_job
def get_trial_values(wildcards):
    return PLAN.trial_values(wildcards.trial)


@per_job
def get_trial_settings(wildcards):
    return PLAN.settings_of(wildcards.trial)


@per_job
def get_trial_priority(wildcards):
    """The longest trials first (see snaketune.workflow.resources.expected_cost)."""
    tid = wildcards.trial
    return expected_cost(PLAN.values_of(tid), PLAN.schedule_of(tid), PLAN.settings_of(tid)["epochs"])


# Only what a study needs is a function of the trial: each function call costs every trial
# job of a large study's DAG; the value a constant gives is the same.
TRAIN_INPUT = get_trial_inputs if PLAN.schedules else TRIAL_DATA
TRAIN_SETTINGS = get_trial_settings if STUDY.replicates > 1 else PLAN.settings
TRAINING_RESOURCES = {
    name: per_job(value) if callable(value) else value
    for name, value in training_resources(RESOURCES, PLAN.max_trial_epochs).items()
}


@in_plan
def get_final_configuration(wildcards):
    return PLAN.final_configuration(wildcards.trial, wildcards.fkey)


def get_final_model(wildcards):
    """The final model of the best trial, and best_params.json: published again whenever the
    aggregate has run (a change of the final settings included), so that a winner changing
    back to an earlier one (whose final model is older than the published copy) is published
    too."""
    return PLAN.final_inputs(best_trial())


def get_summary_inputs(wildcards):
    return PLAN.summary_inputs()


# What was built and has since gone missing is built again, what was damaged is named: see
# snaketune/trial/integrity.py. (Snakemake would not rebuild a deleted file while what was built
# from it is up to date, nor notice a truncated model.)
MISSING, DAMAGED = {}, {}
if workflow.is_main_process:
    MISSING, DAMAGED = check_built(PLAN, final=PLAN.final_enabled)
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
