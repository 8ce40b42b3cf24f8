# Configuration checks and input functions shared by the rule files.
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
    strategy="grid|random|bayesian",


def space_ready():
    """Wait for the `space` checkpoint: trial ids derive from the discovered search space."""
    checkpoints.space.get()


def bayesian_trials():
    rounds = []
    for r in range(PLAN.bayes_rounds):
        path = checkpoints.bayesian_round.get(key=PLAN.bayes_key, round=r).output[0]
        rounds.append(PLAN.read_round(path))
    return PLAN.budgeted(rounds)


def strategy_trials(strategy):
    """(trial id, round) in the strategy's order; round is None outside Bayesian rounds."""
    space_ready()
    if strategy == "bayesian":
        return bayesian_trials()
    return [(tid, None) for tid in PLAN.static_trials(strategy)]


def strategy_metrics(wildcards):
    return [
        PLAN.trial_file(tid, "metrics.csv")
        for tid, _ in strategy_trials(wildcards.strategy)
    ]


def strategy_membership(wildcards):
    """[trial number, round, trial id, values] of each trial of one strategy."""
    return [
        [number, round_, tid, PLAN.values_of(tid)]
        for number, (tid, round_) in enumerate(
            strategy_trials(wildcards.strategy), start=1
        )
    ]


def bayesian_history(wildcards):
    """Round r learns from every proposal of the rounds before it, in order."""
    rounds, metrics = [], []
    for r in range(int(wildcards.round)):
        path = checkpoints.bayesian_round.get(key=wildcards.key, round=r).output[0]
        rounds.append(path)
        metrics += [PLAN.trial_file(tid, "metrics.csv") for tid in PLAN.read_round(path)]
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
        "best_so_far_by_time",
        "objective_vs_hyperparameters",
        "learning_curves_top5",
        "objective_distribution",
    )
]


def study_outputs():
    outputs = [f"{OUT}/trials.csv", f"{OUT}/best_params.json", f"{OUT}/summary.md", *PLOTS]
    if "bayesian" in STUDY.enabled_strategies:
        # Named outright: Snakemake does not rerun a finished table for an input that only
        # stands in for a checkpoint, so a raised budget's new round would otherwise wait.
        outputs.append(PLAN.round_path(PLAN.bayes_rounds - 1))
    if STUDY.config["final"]["enabled"]:
        outputs += [f"{OUT}/final/test_metrics.json", f"{OUT}/final/model.keras"]
    return outputs
