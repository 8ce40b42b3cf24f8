"""The workflow used as a Snakemake module from a user's own project folder, the way Snakemake's
workflow catalog and `snakedeploy deploy-workflow` deploy a workflow: the user's Snakefile,
config, model code, data and results/ are in their folder; the workflow's own files are found
beside the workflow, and nothing is written into it."""

import json
import shutil
import subprocess

import pandas as pd
import pytest
import yaml
from conftest import ROOT

pytestmark = pytest.mark.workflow

# Snakemake runs only the top-level Snakefile's onstart/onsuccess handlers; a module's are
# called from there (docs/models-and-data.md shows the same Snakefile).
SNAKEFILE = """\
configfile: "config/config.yaml"

module snaketune:
    snakefile: "{snakefile}"
    config: config

use rule * from snaketune

onstart:
    snaketune.onstart()

onsuccess:
    snaketune.onsuccess()
"""

# The user's own model, imported by its path relative to their folder.
MODEL = """\
import keras


def build_model(hp):
    model = keras.Sequential([
        keras.Input(shape=(28, 28, 1)),
        keras.layers.Flatten(),
        keras.layers.Dense(16, activation="relu"),
        keras.layers.Dense(10, activation="softmax"),
    ])
    optimizer = keras.optimizers.Adam(hp.Choice("learning_rate", [0.01, 0.003]))
    model.compile(optimizer, loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model
"""


def written_by_a_run(root):
    """The files a run would leave in a folder it works in: results/ and Snakemake's .snakemake/."""
    return {
        str(path.relative_to(root)): path.stat().st_mtime_ns
        for folder in ("results", ".snakemake")
        if (root / folder).exists()
        for path in (root / folder).rglob("*")
    }


def run(project, *args, check=True):
    result = subprocess.run(
        [shutil.which("snakemake"), *args], cwd=project, capture_output=True, text=True, timeout=600
    )
    if check and result.returncode != 0:
        raise AssertionError(f"snakemake {' '.join(args)} failed:\n{result.stdout[-3000:]}\n{result.stderr[-5000:]}")
    return result


def test_a_study_runs_from_the_users_own_folder(tmp_path, mnist_path):
    project = tmp_path / "myproject"
    (project / "config").mkdir(parents=True)
    (project / "models").mkdir()
    (project / "Snakefile").write_text(SNAKEFILE.format(snakefile=ROOT / "Snakefile"))
    (project / "models" / "net.py").write_text(MODEL)
    (project / "config" / "config.yaml").write_text(
        yaml.safe_dump(
            {
                "study": "mine",
                "data": {"path": str(mnist_path), "validation_split": 0.25, "subset": 200},
                "model": {"build_model": "models/net.py:build_model"},
                "training": {"epochs": 1, "patience": None},
                "space": {},
                "strategies": {"grid": {"values": {"learning_rate": [0.01, 0.003]}}},
            }
        )
    )
    before = written_by_a_run(ROOT)

    run(project, "--cores", "2")

    out = project / "results" / "mine"
    trials = pd.read_csv(out / "trials.csv")
    assert sorted(trials["learning_rate"]) == [0.003, 0.01]
    assert set(trials["strategy"]) == {"grid"} and set(trials["status"]) == {"completed"}
    assert "Best overall" in (out / "summary.md").read_text()
    final = json.loads((out / "final" / "test_metrics.json").read_text())
    assert final["trial_id"] in set(trials["trial_id"])
    assert written_by_a_run(ROOT) == before

    result = run(project, "-n")
    assert "Nothing to be done" in result.stdout + result.stderr
    # The workflow's onstart check, called from the user's handler: trials bundled into
    # scheduler jobs with a strategy that has rounds stop before the first job.
    result = run(
        project,
        "--cores",
        "1",
        "--groups",
        "train=trials",
        "--config",
        'strategies={"bayesian": {"trials": 2}}',
        check=False,
    )
    assert result.returncode != 0
    assert "trials bundled into scheduler jobs" in result.stdout + result.stderr
    assert written_by_a_run(ROOT) == before
