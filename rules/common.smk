# Configuration checks and input functions shared by the rule files.
import inspect
import json
import os
import sys
from pathlib import Path

from snakemake.exceptions import WorkflowError

# Jobs import the `snaketune` package that sits beside this workflow, also on cluster nodes,
# where every job parses the workflow again.
sys.path.insert(0, workflow.basedir)
os.environ.update(
    PYTHONPATH=os.pathsep.join(
        p for p in (workflow.basedir, os.environ.get("PYTHONPATH")) if p
    )
)

from snaketune.config import check_model, load_study
from snaketune.data import PREPARED_FILES
from snaketune.errors import ConfigError
from snaketune.plan import Plan
from snaketune.resources import training_resources
from snaketune.strategies.hyperband import PARENT

# Every check of the config, the data file and a user's build_model(hp) happens here, before
# any job: a job that fails takes its existing outputs with it, and a bad input must leave
# results/ as it was. Jobs parse the workflow again; the build_model check (TensorFlow, in a
# child process, remembered per file content) runs in the main process only.
try:
    STUDY = load_study(config, Path(workflow.basedir) / "config" / "schema.yaml")
    if workflow.is_main_process:
        check_model(STUDY, Path(".snakemake") / "snaketune" / "build_model")
except ConfigError as error:
    raise WorkflowError(str(error)) from None

PLAN = Plan(STUDY)
OUT = PLAN.out
ENV = "../environment.yml"
RESOURCES = STUDY.config["resources"]
DATA_FILES = [f"{PLAN.data_dir}/{name}" for name in PREPARED_FILES]


wildcard_constraints:
    trial="[0-9a-f]{12}",
    round="[0-9]+",
    key="[0-9a-f]{8}",
    table="(replicate_[0-9]+/)?(grid|random|bayesian|hyperband/i[0-9]+_b[0-9]+)",
    bracket="i[0-9]+_b[0-9]+",


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


def space_ready():
    """Wait for the `space` checkpoint: trial ids derive from the discovered search space."""
    checkpoints.space.get()


def bayesian_trials(plan):
    rounds = []
    for r in range(plan.bayes_rounds):
        path = checkpoints.bayesian_round.get(key=plan.bayes_key, round=r).output[0]
        rounds.append(plan.read_round(path))
    return plan.budgeted(rounds)


def hyperband_round_file(plan, bracket, round_):
    return checkpoints.hyperband_round.get(
        key=plan.hyperband_key, bracket=bracket.name, round=round_
    ).output[0]


def hyperband_trials(plan, name):
    """(trial id, round) of one bracket, round by round: each round after the first waits
    for its checkpoint."""
    bracket = plan.bracket(name)
    trials = [(tid, 0) for tid in plan.first_rounds()[bracket]]
    for r in range(1, bracket.number + 1):
        trials += [
            (tid, r) for tid in plan.read_round(hyperband_round_file(plan, bracket, r))
        ]
    return trials


def table_trials(table):
    """(trial id, round) in the table's order; round is None for grid and random trials."""
    space_ready()
    plan, strategy, bracket = PLAN.for_table(table)
    if strategy == "bayesian":
        return bayesian_trials(plan)
    if strategy == "hyperband":
        return hyperband_trials(plan, bracket)
    return [(tid, None) for tid in plan.static_trials(strategy)]


def table_metrics(wildcards):
    return [
        PLAN.trial_file(tid, "metrics.csv") for tid, _ in table_trials(wildcards.table)
    ]


def table_membership(wildcards):
    """[trial number, round, trial id, values, bracket] of each trial of one table."""
    _, _, bracket = PLAN.for_table(wildcards.table)
    return [
        [number, round_, tid, PLAN.values_of(tid), bracket]
        for number, (tid, round_) in enumerate(table_trials(wildcards.table), start=1)
    ]


def previous_round(wildcards):
    """The trials a Hyperband round promotes from, in their order: [trial id, values]."""
    space_ready()
    plan = PLAN.by_key(wildcards.key)
    bracket = plan.bracket(wildcards.bracket)
    r = int(wildcards.round)
    if r == 1:
        ids = plan.first_rounds()[bracket]
    else:
        ids = plan.read_round(hyperband_round_file(plan, bracket, r - 1))
    return [[tid, PLAN.values_of(tid)] for tid in ids]


def previous_round_metrics(wildcards):
    return [PLAN.trial_file(tid, "metrics.csv") for tid, _ in previous_round(wildcards)]


# Content-addressed: the trial id already covers the data settings, so rewriting the
# prepared arrays (a rerun of `data`) must not retrain every cached trial. info.json alone
# stands for them all: `data` writes it last, and one input instead of seven per trial makes
# the DAG of a 10,000-trial study build markedly faster.
TRIAL_DATA = ancient(f"{PLAN.data_dir}/info.json")


@per_job
def trial_inputs(wildcards):
    """A promoted Hyperband trial also needs its parent, whose model it resumes."""
    parent = PLAN.values_of(wildcards.trial).get(PARENT)
    if parent:
        return [TRIAL_DATA, ancient(PLAN.trial_file(parent, "metrics.csv"))]
    return [TRIAL_DATA]


@per_job
def trial_values(wildcards):
    # sorted: Snakemake compares params as text, and the values' order carries no meaning
    return dict(sorted(PLAN.values_of(wildcards.trial).items()))


@per_job
def trial_settings(wildcards):
    return PLAN.settings_of(wildcards.trial)


# Only what a study needs is a function of the trial: each function call costs every trial
# job of a large study's DAG; the value a constant gives is the same.
TRAIN_INPUT = trial_inputs if "hyperband" in STUDY.enabled_strategies else TRIAL_DATA
TRAIN_SETTINGS = trial_settings if STUDY.replicates > 1 else PLAN.settings
TRAINING_RESOURCES = {
    name: per_job(value) if callable(value) else value
    for name, value in training_resources(RESOURCES, PLAN.max_trial_epochs).items()
}


def bayesian_history(wildcards):
    """Round r learns from every proposal of the rounds before it, in order."""
    plan = PLAN.by_key(wildcards.key)
    rounds, metrics = [], []
    for r in range(int(wildcards.round)):
        path = checkpoints.bayesian_round.get(key=wildcards.key, round=r).output[0]
        rounds.append(path)
        metrics += [PLAN.trial_file(tid, "metrics.csv") for tid in plan.read_round(path)]
    return {"rounds": rounds, "metrics": metrics}


def best_params_file(wildcards):
    return checkpoints.aggregate.get().output.best


def best_overall(wildcards):
    """What the final model depends on: the winning configuration, not who found it."""
    best = json.loads(Path(checkpoints.aggregate.get().output.best).read_text())["overall"]
    return {k: best[k] for k in ("trial_id", "hyperparameters", "objective_epoch")}


PLOTS = [
    f"{OUT}/plots/{name}.png"
    for name in (
        "best_so_far_by_trial",
        "best_so_far_by_epochs",
        "best_so_far_by_time",
        "objective_vs_hyperparameters",
        "learning_curves_top5",
        "objective_distribution",
    )
]


def study_outputs():
    outputs = [f"{OUT}/trials.csv", f"{OUT}/best_params.json", f"{OUT}/summary.md", *PLOTS]
    # The last rounds are named outright: Snakemake does not rerun a finished table for an
    # input that only stands in for a checkpoint, so a raised budget's new round would wait.
    for plan in PLAN.replicas:
        if "bayesian" in STUDY.enabled_strategies:
            outputs.append(plan.round_path(plan.bayes_rounds - 1))
        if "hyperband" in STUDY.enabled_strategies:
            outputs += [
                plan.hyperband_round_path(b, b.number)
                for b in plan.hyperband.brackets()
                if b.number > 0
            ]
    if STUDY.config["final"]["enabled"]:
        outputs += [f"{OUT}/final/test_metrics.json", f"{OUT}/final/model.keras"]
    return outputs
