"""The seed notebook's build_model, `Flatten(input_shape=(28, 28))` first, still passes the
check before any job and trains on MNIST as the data job lays it out (imports TensorFlow)."""

from conftest import ROOT

from snaketune.trial import model_check
from snaketune.trial.train import run_trial

SPEC = f"{ROOT / 'tests' / 'models' / 'seed_notebook.py'}:build_model"


def test_the_seed_notebooks_build_model_is_checked_and_trains(tiny_data, tmp_path):
    mnist = {"path": None, "loader": None, "csv": None, "task": None}
    objective = {"name": "val_accuracy", "direction": "max"}
    checked = model_check.check_user_model(
        {"build_model": SPEC}, {}, data=mnist, summary=None, objective=objective, cache_dir=tmp_path / "cache"
    )
    assert [hp["name"] for hp in checked["space"]] == ["units", "dropout", "learning_rate"]
    settings = {"model": {"build_model": SPEC}, "epochs": 1, "patience": None, "seed": 0, "objective": objective}
    record = run_trial(
        study="s",
        trial_id="seed",
        values={"units": 32, "dropout": 0.1, "learning_rate": 0.003},
        settings=settings,
        data_dir=tiny_data,
        out_dir=tmp_path / "trial",
    )
    assert record["status"] == "completed", record["error"]
    assert record["params"] == 28 * 28 * 32 + 32 + 32 * 10 + 10 and record["unused"] == ""
