"""Snakemake resources of the jobs that train a model, from the study's `resources` settings.

Memory and time limits grow with each attempt, so a job a scheduler killed for exceeding
them (or that died for any other reason) gets more of both when `--retries` reruns it.
"""

from __future__ import annotations

from snaketune.search.schedule import initial_epoch
from snaketune.search.space import DEFAULT_BATCH_SIZE

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
        # attempt finished (snaketune/workflow/attempts.py)
        return attempt

    requested = {"mem_mb": mem_mb, "runtime": runtime, "attempt": attempt}
    if resources["gpu"]:
        # The Slurm executor plugin turns `gpu` into --gpus; other jobs ask for none.
        requested["gpu"] = resources["gpu"]
        # read by the job itself on a local machine (snaketune/trial/devices.py), ignored by Slurm
        requested["trials_per_gpu"] = resources["trials_per_gpu"]
    return requested


def expected_cost(values: dict, schedule: dict, epochs: int) -> int:
    """A trial's training in relative units, for Snakemake's `priority:` (highest first): the
    epochs it trains times its steps per epoch (one over its batch size). Trials of unequal
    length started longest first leave the fewest cores idle while the last ones finish."""
    to_epoch = int(schedule.get("epochs", values.get("epochs", epochs)))
    batch_size = int(values.get("batch_size", DEFAULT_BATCH_SIZE))
    return max(1, round(1000 * (to_epoch - initial_epoch(schedule)) / batch_size))
