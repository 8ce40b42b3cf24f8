"""The examples a user copies, each run end to end on a small slice (docs/models-and-data.md
has their full runs): a CNN on MNIST, a regression from a CSV, a binary classification scored by AUC with a
data loader, and a Keras Tuner HyperModel that tunes its fit."""

import json

import pandas as pd
import pytest
import yaml
from conftest import ROOT, snakemake, write_config

pytestmark = pytest.mark.workflow


def small(name: str, mnist_path) -> dict:
    """The example's config with every path from the project and a budget of seconds."""
    config = yaml.safe_load((ROOT / "examples" / f"{name}.yaml").read_text())
    data, model = config["data"], config["model"]
    for key in ("csv", "loader"):
        if data.get(key):
            data[key] = str(ROOT / data[key])
    if model.get("hypermodel"):
        model["hypermodel"] = str(ROOT / model["hypermodel"])
    if name == "mnist_cnn":
        data.update(path=str(mnist_path), subset=300)
    config["strategies"] = {
        k: {**v, "trials": 2} if "trials" in v else v for k, v in config["strategies"].items() if k != "bayesian"
    }
    config["training"]["epochs"] = 2
    config["final"] = {**config.get("final", {}), "epochs": None}
    return config


@pytest.mark.parametrize(
    "name, task, objective, test_metrics",
    [
        ("mnist_cnn", "classification", "val_accuracy", {"test_loss", "test_accuracy"}),
        ("diabetes_regression", "regression", "val_mae", {"test_loss", "test_mae"}),
        ("breast_cancer_auc", "binary", "val_auc", {"test_loss", "test_accuracy", "test_auc"}),
        ("digits_hypermodel", "classification", "val_accuracy", {"test_loss", "test_accuracy"}),
    ],
)
def test_an_example_runs_end_to_end(name, task, objective, test_metrics, tmp_path, mnist_path):
    write_config(tmp_path, small(name, mnist_path))
    snakemake(tmp_path, "--cores", "2")
    out = next((tmp_path / "results").iterdir())
    trials = pd.read_csv(out / "trials.csv")
    assert set(trials["status"]) == {"completed"}, trials["error"].tolist()
    assert set(trials["objective"]) == {objective} and trials["objective_value"].notna().all()
    assert f"best_{objective}" in trials
    summary = (out / "summary.md").read_text()
    assert f"Task: **{task}**" in summary and f"Objective: **{objective}**" in summary
    final = json.loads((out / "final" / "test_metrics.json").read_text())
    assert test_metrics <= set(final), final
    if name == "digits_hypermodel":  # its fit's own hyperparameters were tuned
        assert {"noise", "batch_size"} <= set(trials.columns)
        assert set(trials.loc[trials["strategy"] == "grid", "batch_size"]) == {16, 64}
