"""A run that Snakemake reports as successful has built what it was asked for.

Snakemake can end a workflow with checkpoints early and still report success: after some
checkpoint updates its DAG no longer holds the jobs below them (snakemake/snakemake#823,
#2524; seen here once, in CI's Slurm run of the tiny study, and not reproduced on demand). A user would then find a study without its trials table or summary and an exit
status of 0. The workflow's `onsuccess` hook checks the requested files instead of trusting
the status: where some are missing it continues in a new run of the same command, which
builds only what is missing (everything finished is up to date), and fails loudly naming
the files if a few continuations do not complete it.
"""

from __future__ import annotations

import atexit
import os
import subprocess
import sys

CONTINUATIONS = "SNAKETUNE_CONTINUATION"
MAX_CONTINUATIONS = 3


def missing_targets(dag) -> list[str]:
    """The files of the run's target jobs (the inputs of a rule without outputs, like `all`,
    and every target job's outputs) that do not exist."""
    files = []
    for job in dag.targetjobs:
        files += [str(f) for f in job.input] if not job.output else [str(f) for f in job.output]
    return sorted(f for f in set(files) if not os.path.exists(f))


def partial_run_requested(workflow) -> bool:
    """Options under which a run builds a part of its targets' DAG on purpose."""
    settings = workflow.dag_settings
    return bool(settings.until or settings.omit_from or settings.allowed_rules or settings.batch
                or workflow.touch)


def check_complete(workflow, log=print) -> None:
    """Called from `onsuccess`: continue (or fail) where the run left its targets unbuilt."""
    if not workflow.is_main_process or partial_run_requested(workflow):
        return
    missing = missing_targets(workflow.dag)
    if not missing:
        return
    done = int(os.environ.get(CONTINUATIONS, "0"))
    listed = "\n".join(f"  {path}" for path in missing[:10])
    more = f"\n  ... and {len(missing) - 10} more" if len(missing) > 10 else ""
    if done >= MAX_CONTINUATIONS:
        log(f"snaketune: Snakemake reported success, yet {len(missing)} requested files are missing after "
            f"{done} continuations:\n{listed}{more}\nRun the same command again; nothing finished trains again.")
        # after Snakemake's own exit: a status of 0 would tell scripts the study is complete
        atexit.register(os._exit, 1)
        return
    log(f"snaketune: Snakemake ended early (a known Snakemake checkpoint issue, snakemake/snakemake#823) "
        f"with {len(missing)} requested files not built:\n{listed}{more}\n"
        f"snaketune: continuing in a new run of the same command (nothing finished runs again)")
    atexit.register(_continue, done + 1)


def _continue(number: int) -> None:
    """Run the same command again once this Snakemake has exited and released its lock on the
    working directory, and exit with its status."""
    sys.stdout.flush()
    sys.stderr.flush()
    env = {**os.environ, CONTINUATIONS: str(number)}
    status = subprocess.call([sys.executable, "-m", "snakemake", *sys.argv[1:]], env=env)
    os._exit(status)
