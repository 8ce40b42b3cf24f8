"""The built-in models' regression does not depend on the units its target is written in
(snaketune.models.target_scaling; imports TensorFlow)."""

import json

import numpy as np
import pandas as pd
import pytest

from snaketune.data.prepared import prepare, target_stats
from snaketune.trial.train import run_trial

VALUES = {"learning_rate": 0.01, "batch_size": 16, "num_layers": 1, "units": 16, "activation": "relu", "dropout": 0.0}
SETTINGS = {
    "model": {"type": "mlp"},
    "data": {"path": "x", "validation_split": 0.25, "subset": None, "seed": 0},
    "epochs": 2,
    "patience": None,
    "seed": 0,
    "objective": {"name": "val_mae", "direction": "min"},
}
# The same relation in three units: 1 (a spread of ~1, what an unscaled linear output fits
# best), 1000 (grams of a target in kilograms) and 1/1000, small enough that Adam's epsilon
# would slow the steps if it were not scaled with the gradients.
UNITS = (1.0, 1000.0, 0.001)
# float32 rounds the targets of each unit differently (relative 6e-8), and that difference
# goes through every step: the MAEs differ by ~1e-6 relative (measured). This leaves room for
# other CPUs' orders of summation, and is far below what units did to an unscaled target:
# there the MAE in unit 1000 was 1.3 and 1.9 times 1000x unit 1's (epochs 1 and 2), and in
# unit 1/1000 with Adam's epsilon left as it is 1.5 and 2.1 times 1/1000 of it.
RTOL = 1e-3


def regression(tmp_path, unit: float):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 5)).astype("float32")
    y = (x @ np.array([1.0, -0.5, 0.3, 0.0, 0.8]) + 0.5 + 0.1 * rng.normal(size=200)) * unit
    data_dir = tmp_path / f"data_{unit}"
    prepare(
        {"x_train": x[:160], "y_train": y[:160], "x_test": x[160:], "y_test": y[160:]},
        data_dir,
        validation_split=0.25,
        subset=None,
        seed=0,
        source="t",
        task="regression",
        images=False,
    )
    return data_dir


def test_the_builtin_mlp_fits_a_regression_alike_in_any_unit(tmp_path):
    val_mae = {}
    for unit in UNITS:
        record = run_trial(
            study="s",
            trial_id=str(unit),
            values=VALUES,
            settings=SETTINGS,
            data_dir=regression(tmp_path, unit),
            out_dir=tmp_path / str(unit),
        )
        assert record["status"] == "completed", record["error"]
        history = pd.read_csv(tmp_path / str(unit) / "history.csv")
        val_mae[unit] = history["val_mae"].to_numpy() / unit  # in the unit 1's terms
    # It learned (predicting the training mean is off by 0.95 on the validation rows; it reaches
    # 0.35) ...
    assert val_mae[1.0][-1] < 0.6, val_mae
    # ... and each epoch's validation MAE is the same in every unit.
    for unit in UNITS[1:]:
        np.testing.assert_allclose(val_mae[unit], val_mae[1.0], rtol=RTOL, err_msg=f"unit {unit}")


def test_the_final_model_tests_in_the_targets_units_and_reloads(tmp_path):
    import keras

    from snaketune.trial.final import retrain_and_test

    data_dir = regression(tmp_path, 1000.0)
    mean, std = target_stats(data_dir)
    y_train = np.load(data_dir / "y_train.npy")
    np.testing.assert_allclose([mean[0], std[0]], [y_train.mean(), y_train.std()], rtol=1e-6)
    record = retrain_and_test(
        best={"trial_id": "t", "hyperparameters": VALUES, "objective_epoch": 2},
        settings=SETTINGS,
        data_dir=data_dir,
        model_path=tmp_path / "model.keras",
        metrics_path=tmp_path / "test_metrics.json",
    )
    assert json.loads((tmp_path / "test_metrics.json").read_text())["test_mae"] == record["test_mae"]
    # Reloaded with Keras alone (no layer of snaketune's to register), its predictions are in
    # the target's units: their MAE on the test rows is the one recorded.
    model = keras.models.load_model(tmp_path / "model.keras")
    x_test, y_test = np.load(data_dir / "x_test.npy"), np.load(data_dir / "y_test.npy")
    predicted = model.predict(x_test, verbose=0).reshape(-1)
    assert np.mean(np.abs(predicted - y_test)) == pytest.approx(record["test_mae"], rel=1e-4)
    # It learned: predicting the training mean is off by 1064 on these rows, in this unit.
    assert record["test_mae"] < 600, record


def test_target_stats_of_a_folder_prepared_before_they_were_kept_come_from_its_y_train(tmp_path):
    # A data folder's name does not change with this (its layout is the same), so folders of
    # earlier runs, without target_stats.npz, are used again.
    data_dir = regression(tmp_path, 1000.0)
    kept = target_stats(data_dir)
    (data_dir / "target_stats.npz").unlink()
    np.testing.assert_array_equal(target_stats(data_dir), kept)
