"""The `workflow` mark: `-m "not workflow"` runs no Snakemake (tests/conftest.py refuses it)."""

import subprocess
import sys

import pytest
from conftest import runs_snakemake


def test_the_ways_of_starting_snakemake_are_recognised():
    assert runs_snakemake(["/usr/bin/snakemake", "-s", "Snakefile", "-n"])
    assert runs_snakemake("snakemake --cores 1")
    assert runs_snakemake([sys.executable, "-m", "snakemake", "--cores", "1"])
    assert runs_snakemake([sys.executable, "-c", "from snakemake.api import SnakemakeApi\nSnakemakeApi()"])
    assert not runs_snakemake([sys.executable, "-c", "import snakemake"])
    assert not runs_snakemake(["ls", "snakemake"])


def test_a_test_not_marked_workflow_cannot_start_snakemake():
    with pytest.raises(AssertionError, match="not marked workflow"):
        subprocess.run([sys.executable, "-m", "snakemake", "--version"], capture_output=True)


@pytest.mark.workflow
def test_a_workflow_test_can():
    done = subprocess.run([sys.executable, "-m", "snakemake", "--version"], capture_output=True, text=True)
    assert done.returncode == 0 and done.stdout.strip()
