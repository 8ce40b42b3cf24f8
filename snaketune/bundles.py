"""Trials bundled into one scheduler job (Snakemake's group `trials`), run side by side.

The Slurm executor plugin starts a group job's inner Snakemake with `--executor slurm-jobstep
--jobs 1`, so the bundled trials would train one after another, each in its own `srun` step,
on an allocation that Snakemake sized for them side by side (the sum of their threads and
memory; measured on the local Slurm: 8 trials on a 2-CPU allocation, one at a time). Inside
a group job the workflow therefore lets its inner Snakemake run as many steps at once as the
allocation's CPUs hold trials, and keep going past a trial that dies.

Snakemake 9.27.1 cannot group jobs that a checkpoint adds to the DAG: when a strategy's round
(a checkpoint) ends, it fails with `KeyError: train` in `DAG.update_ready` (measured on the
local Slurm with the tiny study). Bundling is therefore for studies whose trials all follow
from the search space (grid, random), and a run that asks for it with a strategy that has
rounds stops before its first job, saying so.
"""

from __future__ import annotations

from snakemake.utils import available_cpu_count

from snaketune.strategies import STRATEGIES
from snaketune.strategies.base import Strategy


def inner_scheduler_job(workflow) -> bool:
    """This Snakemake runs the jobs of one scheduler job (a group job's, or a single one's)
    on the node the scheduler gave it, through a remote executor (`--jobs` given), not the
    innermost Snakemake that runs one job itself. (The group id is not known yet while the
    Snakefile is read; a single job has one job to run either way.)"""
    return bool(workflow.remote_exec and workflow.nodes is not None)


def steps_at_once(trial_threads: int) -> int:
    """Trials the allocation's CPUs (this process's affinity) hold side by side."""
    return max(1, available_cpu_count() // max(1, trial_threads))


def run_side_by_side(workflow, trial_threads: int) -> None:
    if inner_scheduler_job(workflow):
        # _nodes: the jobs a remote executor keeps running at once (--jobs)
        workflow.register_resource("_nodes", steps_at_once(trial_threads))
        # A trial that dies must not keep the bundle's other trials from running: without
        # this, the inner Snakemake starts none after the first failure, and a trial that
        # dies on every attempt would starve the trials queued behind it in its bundle
        # (measured: the third trial of a bundle never ran).
        workflow.execution_settings.keep_going = True


def with_rounds(strategies) -> list[str]:
    """The strategies whose trials come from checkpoint rounds (they learn from the trials before)."""
    return [name for name in strategies
            if STRATEGIES[name].history_driven or STRATEGIES[name].from_history is not Strategy.from_history]


def check_bundling(workflow, strategies) -> None:
    """Before the first job: ValueError where training jobs are grouped and a strategy has rounds."""
    grouped = workflow.group_settings.overwrite_groups.get("train") or workflow.get_rule("train").group
    rounds = with_rounds(strategies)
    if grouped and rounds:
        raise ValueError(
            f"trials bundled into scheduler jobs (group '{grouped}' of rule train) work only for strategies "
            f"whose trials follow from the search space (grid, random): Snakemake cannot group the trials that "
            f"the rounds of {', '.join(rounds)} add to the workflow. Run without --groups/--group-components, "
            f"or with those strategies disabled")
