"""A run that Snakemake reports as successful but that left requested files unbuilt (as
Snakemake's checkpoint handling can, snakemake/snakemake#823) fails: a non-zero exit status,
the missing files, and the command that builds them, without the run's force options. Nothing
runs again on its own (see snaketune/workflow/completion.py for why).

The early end is simulated: the `onsuccess` hook of a three-rule workflow (b.txt -> a.txt ->
all) deletes a.txt before snaketune's check looks at it, in as many runs as the test asks.
Every job appends its rule's name to runs.txt, so a job that ran again shows there."""

import shlex
import subprocess
import sys
from types import SimpleNamespace

import pytest
from conftest import ROOT
from snakemake.exceptions import WorkflowError
from snakemake.settings.types import DAGSettings, RemoteExecutionSettings

from snaketune.workflow.completion import check_complete, without_force

WORKFLOW = f"""
import os, sys
sys.path.insert(0, {str(ROOT)!r})
from snaketune.workflow.completion import check_complete

rule all:
    input: "a.txt"

rule a:
    input: "b.txt"
    output: "a.txt"
    shell: "echo a >> runs.txt && touch {{output}}"

rule b:
    output: "b.txt"
    shell: "echo b >> runs.txt && touch {{output}}"

onsuccess:
    # the runs (counted by rule a's jobs) in which a.txt goes missing after Snakemake's success
    if open("runs.txt").read().split().count("a") <= int(config["lose"]):
        os.remove("a.txt")
    check_complete(workflow)
"""


def snakemake(tmp_path, *args):
    (tmp_path / "Snakefile").write_text(WORKFLOW)
    return subprocess.run(
        [sys.executable, "-m", "snakemake", *args], cwd=tmp_path, capture_output=True, text=True, timeout=300
    )


def runs(tmp_path):
    return (tmp_path / "runs.txt").read_text().split()


def suggested(output):
    """The command the failed run gives, as arguments of `snakemake`."""
    lines = output.splitlines()
    command = lines[lines.index(next(line for line in lines if line.startswith("To build them"))) + 1]
    assert command.startswith("  snakemake "), output
    return shlex.split(command)[1:]


def unlocked(tmp_path):
    locks = tmp_path / ".snakemake" / "locks"
    return not locks.exists() or not any(locks.iterdir())


@pytest.mark.workflow
def test_a_run_that_ends_early_fails_naming_the_files_and_the_command(tmp_path):
    result = snakemake(tmp_path, "--cores", "1", "--config", "lose=1")
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert "1 requested file was not built" in output and "\n  a.txt\n" in output
    assert suggested(output) == ["--cores", "1", "--config", "lose=1"]
    assert runs(tmp_path) == ["b", "a"]  # nothing ran again on its own
    assert unlocked(tmp_path)

    again = snakemake(tmp_path, *suggested(output))
    assert again.returncode == 0, again.stdout + again.stderr
    assert runs(tmp_path) == ["b", "a", "a"]  # only what was missing


@pytest.mark.workflow
@pytest.mark.parametrize("force", [["--forcerun", "b"], ["-F"], ["-R", "b.txt"], ["--forcerun=b"]])
def test_the_command_given_leaves_out_the_runs_force_options(tmp_path, force):
    (tmp_path / "b.txt").touch()  # finished before: built in this run only where forced
    result = snakemake(tmp_path, "--cores", "1", *force, "--config", "lose=1")
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert runs(tmp_path) == ["b", "a"]
    assert suggested(output) == ["--cores", "1", "--config", "lose=1"]
    assert "without its force options" in output

    again = snakemake(tmp_path, *suggested(output))
    assert again.returncode == 0, again.stdout + again.stderr
    assert runs(tmp_path) == ["b", "a", "a"]  # b.txt, forced once, is not built again


@pytest.mark.workflow
def test_a_force_set_by_a_profile_is_named(tmp_path):
    """A profile's force cannot be left out of a command line: the message says to run
    without it."""
    (tmp_path / "profile").mkdir()
    (tmp_path / "profile" / "config.yaml").write_text("forcerun: [b]\n")
    result = snakemake(tmp_path, "--cores", "1", "--profile", "profile", "--config", "lose=1")
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert "with a profile that does not force jobs" in output
    assert suggested(output) == ["--cores", "1", "--profile", "profile", "--config", "lose=1"]


def test_force_options_snakemake_would_read_otherwise_give_no_command():
    """Forms the plain removal does not know (grouped, abbreviated) and a removal that changes
    how Snakemake reads the rest (here b.txt would become a --config value) are checked with
    Snakemake's own parser; the message then names the options instead of a command."""
    assert without_force(["-c1", "--forcerun", "b", "a", "--", "a.txt"]) == ["-c1", "--", "a.txt"]
    assert without_force(["--cores", "1", "-pF"]) is None
    assert without_force(["--cores", "1", "--forcer", "b"]) is None
    assert without_force(["--config", "lose=1", "-F", "b.txt"]) is None


@pytest.mark.workflow
def test_a_run_through_the_api_gets_the_error_and_goes_on(tmp_path):
    """A program that runs the workflow through Snakemake's API receives the WorkflowError
    and keeps running (no exit of its process from inside Snakemake)."""
    (tmp_path / "Snakefile").write_text(WORKFLOW)
    program = """
from pathlib import Path
from snakemake.api import SnakemakeApi
from snakemake.exceptions import WorkflowError
from snakemake.settings.types import ConfigSettings, OutputSettings, ResourceSettings

with SnakemakeApi(OutputSettings()) as api:
    workflow = api.workflow(resource_settings=ResourceSettings(cores=1), snakefile=Path("Snakefile"),
                            config_settings=ConfigSettings(config={"lose": 1}), workdir=Path.cwd())
    try:
        workflow.dag().execute_workflow(executor="local")
    except WorkflowError as error:
        print("raised:", error)
print("the program goes on")
"""
    result = subprocess.run([sys.executable, "-c", program], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "raised: snaketune: Snakemake reported success, yet 1 requested file" in result.stdout
    assert "run the workflow again." in result.stdout
    assert result.stdout.rstrip().endswith("the program goes on")
    assert runs(tmp_path) == ["b", "a"]
    assert unlocked(tmp_path)


def test_immediate_submit_ends_before_any_job_and_is_not_an_early_end(tmp_path):
    """With --immediate-submit Snakemake submits every job and ends at once, its targets
    unbuilt by design. (No executor here submits that way; the workflow is a stand-in with
    Snakemake's own settings objects.)"""

    def workflow(**remote):
        return SimpleNamespace(
            is_main_process=True,
            touch=False,
            dag_settings=DAGSettings(),
            remote_execution_settings=RemoteExecutionSettings(**remote),
            dag=SimpleNamespace(targetjobs=[SimpleNamespace(input=[], output=[str(tmp_path / "a.txt")])]),
        )

    check_complete(workflow(immediate_submit=True), argv=["snakemake"])
    with pytest.raises(WorkflowError, match="a.txt"):
        check_complete(workflow(), argv=["snakemake"])


@pytest.mark.workflow
def test_a_complete_run_is_left_alone(tmp_path):
    result = snakemake(tmp_path, "--cores", "1", "--config", "lose=0")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "not built" not in result.stdout + result.stderr
    assert runs(tmp_path) == ["b", "a"]
