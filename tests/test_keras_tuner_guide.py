"""Models of each shape Keras Tuner's "Getting started" guide shows, run through the whole
workflow on a slice of MNIST prepared the guide's way (float images with a channel axis,
one-hot labels, its own x_val/y_val): each completes its trials and its final model.

The four studies run side by side, one snakemake each, so that together they cost about what
one does on two cores."""

import json
import subprocess

import pandas as pd
import pytest
from conftest import ROOT, snakemake_cmd, write_config

pytestmark = pytest.mark.workflow

MODELS = ROOT / "tests" / "models"
STUDIES = {
    # keras.Sequential() + Flatten() with no Input: built at its first fit
    "sequential": {"build_model": f"{MODELS / 'guide_models.py'}:sequential"},
    # for i in range(hp.Int("num_layers", 1, 3)): ... hp.Int(f"units_{i}", ...)
    "layers": {"build_model": f"{ROOT / 'examples' / 'keras_tuner_guide.py'}:build_model"},
    # fit(self, hp, model, *args, **kwargs) tuning shuffle
    "shuffle": {"hypermodel": f"{MODELS / 'guide_models.py'}:Shuffled"},
    # build tunes image_size, fit crops to hp.get("image_size")
    "image_size": {"hypermodel": f"{MODELS / 'keras_tuner_guide.py'}:ImageSize"},
}


@pytest.fixture(scope="module")
def guide_studies(tmp_path_factory, guide_mnist):
    runs = {}
    for name, model in STUDIES.items():
        workdir = tmp_path_factory.mktemp(f"guide_{name}")
        write_config(
            workdir,
            {
                "study": name,
                "data": {"path": str(guide_mnist)},
                "model": model,
                "training": {"epochs": 1, "patience": None},
                "strategies": {"random": {"trials": 3 if name == "layers" else 2, "seed": 2}},
            },
        )
        runs[name] = (
            workdir,
            subprocess.Popen(
                snakemake_cmd("--configfile", "config.yaml", "--cores", "1"),
                cwd=workdir,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            ),
        )
    for name, (_, run) in runs.items():
        output, _ = run.communicate(timeout=1200)
        assert run.returncode == 0, f"study {name} failed:\n{output[-6000:]}"
    return {name: workdir / "results" / name for name, (workdir, _) in runs.items()}


@pytest.mark.parametrize("name", list(STUDIES))
def test_each_guide_model_completes_its_trials_and_final_model(guide_studies, name):
    out = guide_studies[name]
    trials = pd.read_csv(out / "trials.csv", keep_default_na=False, na_values=[""])
    assert len(trials) == (3 if name == "layers" else 2)
    assert set(trials["status"]) == {"completed"}, trials["error"].tolist()
    assert trials["objective_value"].between(0, 1).all() and (trials["params"] > 0).all()
    final = json.loads((out / "final" / "test_metrics.json").read_text())
    # trained on the guide's training rows and its own validation rows, tested on its test rows
    assert final["train_samples"] == 384 + 128 and final["test_samples"] == 128
    assert 0 <= final["test_accuracy"] <= 1 and (out / "final" / "model.keras").stat().st_size > 0


def test_the_dynamic_layers_space_holds_every_layers_units(guide_studies):
    out = guide_studies["layers"]
    space = {p["name"]: p.get("conditions", []) for p in json.loads((out / "space.json").read_text())}
    assert {"units_0", "units_1", "units_2"} <= set(space)
    assert space["units_2"] == [{"name": "num_layers", "values": [3]}]
    trials = pd.read_csv(out / "trials.csv", keep_default_na=False, na_values=[""])
    for row in trials.itertuples():
        # a layer's units are given exactly where the trial has that layer
        assert [not pd.isna(getattr(row, f"units_{i}")) for i in range(3)] == [i < row.num_layers for i in range(3)]
