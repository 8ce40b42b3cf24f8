"""Trials bundled into one scheduler job (Snakemake's group `trials`, see the Slurm profile).

The Slurm executor plugin starts a group job's inner Snakemake with `--executor slurm-jobstep
--jobs 1` and without `--keep-going`: its trials run one after another, each in an `srun`
step (a step takes the job's whole memory, so Slurm would not run two side by side anyway;
measured on the local Slurm with `sacct`: the 8 steps of a bundle started one after the other
ended), and after a trial dies it starts none of those queued behind it. A trial that died on
every attempt would then keep the trials behind it in its bundle from ever running. Inside a
scheduler job the workflow therefore makes its inner Snakemake keep going.

Snakemake 9.27.1 cannot group jobs that a checkpoint adds to the DAG: when a strategy's round
(a checkpoint) ends, it fails with `KeyError: train` in `DAG.update_ready` (measured on the
local Slurm with the tiny study). Bundling is therefore for studies whose trials all follow
from the search space (grid, random), and a run that asks for it with a strategy that has
rounds stops before its first job, saying so.
"""

from __future__ import annotations

from snaketune.search.strategies import STRATEGIES


def inner_scheduler_job(workflow) -> bool:
    """This Snakemake runs the jobs of one scheduler job (a group job's, or a single one's)
    on the node the scheduler gave it, through a remote executor (`--jobs` given), not the
    innermost Snakemake that runs one job itself. (The group id is not known yet while the
    Snakefile is read; a single job has one job to run either way.)"""
    return bool(workflow.remote_exec and workflow.nodes is not None)


def keep_going_inside(workflow) -> None:
    """Make the inner Snakemake of a scheduler job keep going past a failed trial. Its
    execution settings are set only after the Snakefile is read, just before it executes."""
    if not inner_scheduler_job(workflow):
        return
    execute = workflow.execute

    def execute_keeping_going(*args, **kwargs):
        workflow.execution_settings.keep_going = True
        return execute(*args, **kwargs)

    workflow.execute = execute_keeping_going


def with_rounds(strategies) -> list[str]:
    """The strategies whose trials come from checkpoint rounds: those that learn from the trials
    before, and those that promote them (Hyperband)."""
    return [name for name in strategies if STRATEGIES[name].history_driven or STRATEGIES[name].schedules]


def check_bundling(workflow, strategies) -> None:
    """Before the first job: ValueError where training jobs are grouped and a strategy has rounds."""
    # the training jobs: a trial's, and each fit's of a configuration fitted several times
    groups = [
        workflow.group_settings.overwrite_groups.get(rule) or workflow.get_rule(rule).group
        for rule in ("train", "train_fit")
    ]
    grouped = next((group for group in groups if group), None)
    rounds = with_rounds(strategies)
    if grouped and rounds:
        raise ValueError(
            f"trials bundled into scheduler jobs (group '{grouped}' of rule train) work only for strategies "
            f"whose trials follow from the search space (grid, random): Snakemake cannot group the trials that "
            f"the rounds of {', '.join(rounds)} add to the workflow. Run without --groups/--group-components, "
            f"or with those strategies disabled"
        )
