"""A user's model receives the targets as the data holds them: one-hot rows stay rows, and a
loss that does not fit their form is named before any job (imports TensorFlow)."""

import numpy as np
import pytest
from conftest import ROOT

from snaketune.core.errors import ConfigError
from snaketune.data import prepared
from snaketune.data import sources as data
from snaketune.trial import model_check
from snaketune.trial.train import run_trial

MODELS = ROOT / "tests" / "models" / "one_hot_models.py"
VAL_ACCURACY = {"name": "val_accuracy", "direction": "max"}


def npz_data(path):
    return {"path": str(path), "loader": None, "csv": None, "task": None}


def check(function, path, cache):
    summary = data.check_file(path, "data.path")
    return model_check.check_user_model(
        {"build_model": f"{MODELS}:{function}"},
        {},
        data=npz_data(path),
        summary=summary,
        objective=VAL_ACCURACY,
        cache_dir=cache,
    )


def test_a_categorical_loss_on_one_hot_rows_is_checked_and_trains(guide_mnist, tmp_path):
    assert set(check("categorical", guide_mnist, tmp_path / "cache")["reported"]) >= {"val_accuracy", "loss"}
    info = prepared.prepare(
        data.load_npz(guide_mnist), tmp_path / "data", validation_split=0.2, subset=None, seed=0, source="guide"
    )
    assert info["one_hot"] and info["sizes"] == {"train": 384, "val": 128, "test": 128}
    settings = {
        "model": {"build_model": f"{MODELS}:categorical"},
        "epochs": 1,
        "patience": None,
        "seed": 0,
        "objective": VAL_ACCURACY,
    }
    record = run_trial(
        study="s",
        trial_id="t",
        values={"units": 8},
        settings=settings,
        data_dir=tmp_path / "data",
        out_dir=tmp_path / "trial",
    )
    assert record["status"] == "completed", record["error"]
    assert 0 < record["objective_value"] <= 1


def test_a_sparse_loss_on_one_hot_rows_is_refused_naming_the_loss_and_the_fix(guide_mnist, tmp_path):
    with pytest.raises(ConfigError) as error:
        check("sparse", guide_mnist, tmp_path / "cache")
    message = str(error.value)
    assert message.startswith(f"config: model.build_model: '{MODELS}:sparse'")
    assert "loss sparse_categorical_crossentropy" in message and "one-hot rows of shape (n, 10)" in message
    assert "loss='categorical_crossentropy'" in message


def test_a_categorical_loss_on_labels_is_refused_naming_the_fix(tmp_path):
    rng = np.random.default_rng(0)
    np.savez(
        tmp_path / "labels.npz",
        x_train=rng.random((64, 28, 28, 1), dtype=np.float32),
        y_train=np.arange(64) % 10,
        x_test=rng.random((16, 28, 28, 1), dtype=np.float32),
        y_test=np.arange(16) % 10,
    )
    with pytest.raises(
        ConfigError,
        match=r"loss categorical_crossentropy, which takes one-hot rows of 10 columns, "
        r"but the targets are class labels 0..9 of shape \(n,\): compile with "
        r"loss='sparse_categorical_crossentropy'",
    ):
        check("categorical", tmp_path / "labels.npz", tmp_path / "cache")


def test_the_built_in_models_take_one_hot_rows_as_labels(guide_mnist, tmp_path, tiny_settings):
    prepared.prepare(
        data.load_npz(guide_mnist), tmp_path / "data", validation_split=0.2, subset=None, seed=0, source="guide"
    )
    values = {
        "learning_rate": 0.003,
        "batch_size": 64,
        "num_layers": 1,
        "units": 16,
        "activation": "relu",
        "dropout": 0.0,
    }
    record = run_trial(
        study="s",
        trial_id="b",
        values=values,
        settings=tiny_settings,
        data_dir=tmp_path / "data",
        out_dir=tmp_path / "trial",
    )
    assert record["status"] == "completed", record["error"]


def test_a_categorical_loss_on_the_mnist_the_data_job_fetches_is_named_too(tmp_path):
    # MNIST fetched by the data job has integer labels; the check stands in for it
    mnist = {"path": None, "loader": None, "csv": None, "task": None}
    with pytest.raises(ConfigError, match=r"loss categorical_crossentropy, which takes one-hot rows of 10 columns"):
        model_check.check_user_model(
            {"build_model": f"{MODELS}:categorical"},
            {},
            data=mnist,
            summary=None,
            objective=VAL_ACCURACY,
            cache_dir=tmp_path / "cache",
        )
