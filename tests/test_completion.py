"""A run that Snakemake reports as successful but that left requested files unbuilt (as
Snakemake's checkpoint handling can, snakemake/snakemake#823) continues in a new run of the
same command, and fails loudly if that does not complete it.

The early end is simulated: the `onsuccess` hook of a two-rule workflow deletes the target
before snaketune's check looks at it, as often as the test asks."""

import subprocess
import sys

from conftest import ROOT

WORKFLOW = f"""
import os, sys
sys.path.insert(0, {str(ROOT)!r})
from snaketune.completion import check_complete

rule all:
    input: "a.txt"

rule a:
    output: "a.txt"
    shell: "echo built >> runs.txt && touch {{output}}"

onsuccess:
    # the runs in which the target goes missing after Snakemake's success
    if len(open("runs.txt").read().split()) <= int(config["lose"]):
        os.remove("a.txt")
    check_complete(workflow)
"""


def run(tmp_path, lose):
    (tmp_path / "Snakefile").write_text(WORKFLOW)
    return subprocess.run([sys.executable, "-m", "snakemake", "--cores", "1", "--config", f"lose={lose}"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=300)


def test_a_run_that_ends_early_continues_until_its_targets_exist(tmp_path):
    result = run(tmp_path, lose=1)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "Snakemake ended early" in output and "continuing in a new run" in output
    assert (tmp_path / "a.txt").exists()
    assert (tmp_path / "runs.txt").read_text().split() == ["built", "built"]  # one continuation


def test_a_run_that_stays_incomplete_fails_naming_the_missing_files(tmp_path):
    result = run(tmp_path, lose=100)
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert "requested files are missing after 3 continuations" in output
    assert "  a.txt" in output
    assert len((tmp_path / "runs.txt").read_text().split()) == 4


def test_a_complete_run_is_left_alone(tmp_path):
    result = run(tmp_path, lose=0)
    assert result.returncode == 0
    assert "ended early" not in result.stdout + result.stderr
    assert (tmp_path / "runs.txt").read_text().split() == ["built"]
