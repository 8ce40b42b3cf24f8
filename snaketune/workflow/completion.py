"""A run that Snakemake reports as successful has built what it was asked for.

Snakemake can end a workflow with checkpoints early and still report success: after some
checkpoint updates its DAG no longer holds the jobs below them (snakemake/snakemake#823,
#2524; seen here once, in CI's Slurm run of the tiny study, and not reproduced on demand). A
user would then find a study without its trials table or summary and an exit status of 0.
The workflow's `onsuccess` hook checks the requested files instead of trusting the status and,
where some are missing, fails the run: a non-zero exit status naming the files and the command
that builds them (everything finished is up to date, so nothing finished runs again).

It does not run that command itself. A new Snakemake started from here would replay whatever
forced this run: `--forcerun train`, `-F`, `-R <file>` can be removed from the command line,
but not from a profile that sets them (`forcerun:` in the workflow profile or
$SNAKEMAKE_PROFILE), and every trial would train again. It would also have to own the user's
Ctrl-C, a SIGTERM from the scheduler and the lock of the run it starts. A stop the user sees,
in a case seen once, costs one command; a rerun of every forced trial costs the study.
"""

from __future__ import annotations

import os
import shlex
import sys

from snakemake.exceptions import WorkflowError

# Snakemake's options that build files again although they are up to date (Snakemake 9.27's
# command line; the last two take the rules or files to force: nargs="*").
FORCE_FLAGS = {"--force", "-f", "--forceall", "-F"}
FORCE_LISTS = {"--forcerun", "-R"}


def missing_targets(dag) -> list[str]:
    """The files of the run's target jobs (the inputs of a rule without outputs, like `all`,
    and every target job's outputs) that do not exist."""
    files = []
    for job in dag.targetjobs:
        files += [str(f) for f in job.input] if not job.output else [str(f) for f in job.output]
    return sorted(f for f in set(files) if not os.path.exists(f))


def partial_run_requested(workflow) -> bool:
    """Options under which a run leaves its targets unbuilt on purpose: a part of the DAG
    (--until, --omit-from, --allowed-rules, --batch), --touch, or --immediate-submit (which
    submits every job and ends before any has run)."""
    settings = workflow.dag_settings
    return bool(
        settings.until
        or settings.omit_from
        or settings.allowed_rules
        or settings.batch
        or workflow.touch
        or workflow.remote_execution_settings.immediate_submit
    )


def forced(workflow) -> bool:
    settings = workflow.dag_settings
    return bool(settings.forcetargets or settings.forceall or settings.forcerun)


def check_complete(workflow, argv=None) -> None:
    """Called from `onsuccess`: raise a WorkflowError, which Snakemake reports and exits 1 on
    (or which a program using Snakemake's API receives), where the run left requested files
    unbuilt."""
    if not workflow.is_main_process or partial_run_requested(workflow):
        return
    missing = missing_targets(workflow.dag)
    if not missing:
        return
    listed = "\n".join(f"  {path}" for path in missing[:10])
    more = f"\n  ... and {len(missing) - 10} more" if len(missing) > 10 else ""
    raise WorkflowError(
        f"snaketune: Snakemake reported success, yet {len(missing)} requested "
        f"{'file was' if len(missing) == 1 else 'files were'} not built (Snakemake "
        f"can end a workflow with checkpoints early, snakemake/snakemake#823):\n{listed}{more}\n"
        f"{how_to_continue(workflow, sys.argv if argv is None else argv)}"
    )


def how_to_continue(workflow, argv: list[str]) -> str:
    """The command that builds what is missing: the one that was run, without its force
    options (they would build every finished file again). A program that runs Snakemake
    through its API has no command line to give."""
    start = "To build them (nothing finished runs again), run"
    why = "which would build the finished files again"
    if not started_from_command_line(argv):
        if forced(workflow):
            return f"{start} the workflow again without forcing jobs (forcerun, forceall or force, {why})."
        return f"{start} the workflow again."
    args = without_force(argv[1:])
    if args is None:  # a force option in a form not recognised here (-pF, --forcer train)
        return f"{start} the same command without its force options (--forcerun/-R, --forceall/-F, --force/-f, {why})."
    command = shlex.join(["snakemake", *args])
    if args != argv[1:]:
        return (
            f"{start} the same command without its force options ({why}; a file or rule forced by name that "
            f"this run did not reach needs its --forcerun again):\n  {command}"
        )
    if forced(workflow):  # by a profile, which the command line does not show
        return (
            f"{start} the same command with a profile that does not force jobs (this run's profile sets "
            f"forcerun, forceall or force, {why}):\n  {command}"
        )
    return f"{start} the same command again:\n  {command}"


def started_from_command_line(argv: list[str]) -> bool:
    """Snakemake's own command line: the `snakemake` script or `python -m snakemake`."""
    program = os.path.normpath(argv[0]) if argv else ""
    return os.path.basename(program) == "snakemake" or program.endswith(os.path.join("snakemake", "__main__.py"))


def without_force(args: list[str]) -> list[str] | None:
    """`args` without Snakemake's force options and the rules or files they name; None where
    Snakemake's own parser still finds a force option in what is left, or reads the rest
    differently from the original (the result is then not the same command)."""
    kept, listing = [], False
    for arg in args:
        if listing and not arg.startswith("-"):
            continue  # a rule or file of --forcerun (nargs="*" takes every word up to an option)
        listing = False
        if arg in FORCE_FLAGS or any(arg.startswith(f"{flag}=") for flag in FORCE_LISTS):
            continue
        if arg in FORCE_LISTS:
            listing = True
            continue
        kept.append(arg)
    from snakemake.cli import get_argument_parser

    parser = get_argument_parser()
    try:
        before, after = vars(parser.parse_args(args)), vars(parser.parse_args(kept))
    except SystemExit:
        return None
    if after["force"] or after["forceall"] or after["forcerun"]:
        return None
    for name in ("force", "forceall", "forcerun"):
        before.pop(name), after.pop(name)
    same = all(_same(before[name], after.get(name)) for name in before)
    return kept if same and before.keys() == after.keys() else None


def _same(a, b) -> bool:
    """Equal values of a parsed option (some, like MaxJobsPerTimespan, compare by identity)."""
    return a == b or (type(a) is type(b) and hasattr(a, "__dict__") and vars(a) == vars(b))
