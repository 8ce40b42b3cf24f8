"""Trials bundled into one scheduler job (Snakemake's group `trials`), run side by side.

The Slurm executor plugin starts a group job's inner Snakemake with `--executor slurm-jobstep
--jobs 1`, so the bundled trials would train one after another, each in its own `srun` step,
on an allocation that Snakemake sized for them side by side (the sum of their threads and
memory; measured on the local Slurm: 8 trials on a 2-CPU allocation, one at a time). Inside
a group job the workflow therefore lets its inner Snakemake run as many steps at once as the
allocation's CPUs hold trials.
"""

from __future__ import annotations

from snakemake.utils import available_cpu_count


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
