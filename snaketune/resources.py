"""Snakemake resources of the jobs that train a model, from the study's `resources` settings.

Memory and time limits grow with each attempt, so a job a scheduler killed for exceeding
them (or that died for any other reason) gets more of both when `--retries` reruns it.
"""

from __future__ import annotations

# Process start, imports, data loading and teardown of one training job, rounded up.
STARTUP_MINUTES = 5


def training_resources(resources: dict, epochs: int) -> dict:
    """`resources:` keyword arguments of a rule whose job trains up to `epochs` epochs."""

    def mem_mb(wildcards, attempt):
        return resources["trial_mem_mb"] * attempt

    def runtime(wildcards, attempt):
        minutes = resources["trial_runtime"] or STARTUP_MINUTES + epochs * resources["minutes_per_epoch"]
        return minutes * attempt

    def attempt(wildcards, attempt):
        # the script's `snakemake` object has no attempt: a retry puts back what an earlier
        # attempt finished (snaketune/attempts.py)
        return attempt

    requested = {"mem_mb": mem_mb, "runtime": runtime, "attempt": attempt}
    if resources["gpu"]:
        # The Slurm executor plugin turns `gpu` into --gpus; other jobs ask for none.
        requested["gpu"] = resources["gpu"]
        # read by the job itself on a local machine (snaketune/devices.py), ignored by Slurm
        requested["trials_per_gpu"] = resources["trials_per_gpu"]
    return requested
