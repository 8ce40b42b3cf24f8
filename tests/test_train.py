"""Training one trial on a few hundred images (imports TensorFlow)."""

import math

import pandas as pd
import pytest

from snaketune.trial.train import run_trial

ROOT = __import__("pathlib").Path(__file__).resolve().parents[1]
VALUES = {"learning_rate": 0.003, "batch_size": 64, "num_layers": 1, "units": 16, "activation": "relu", "dropout": 0.0}


def test_a_trial_writes_model_history_and_metrics(tiny_data, tiny_settings, tmp_path):
    record = run_trial(
        study="s", trial_id="abc", values=VALUES, settings=tiny_settings, data_dir=tiny_data, out_dir=tmp_path
    )
    assert record["status"] == "completed", record["error"]
    assert (tmp_path / "model.keras").stat().st_size > 0
    history = pd.read_csv(tmp_path / "history.csv")
    # every metric Keras reports, under its own name, and the best of each in the record
    assert set(history.columns) == {"epoch", "loss", "accuracy", "val_loss", "val_accuracy", "seconds"}
    assert history["epoch"].tolist() == [1]
    metrics = pd.read_csv(tmp_path / "metrics.csv")
    row = metrics.iloc[0]
    assert row["trial_id"] == "abc" and row["units"] == 16 and row["activation"] == "relu"
    assert row["objective"] == "val_accuracy"
    assert row["objective_value"] == pytest.approx(history["val_accuracy"].max())
    assert row["epochs_run"] == 1 and row["params"] == 28 * 28 * 16 + 16 + 16 * 10 + 10
    assert row["best_val_loss"] == pytest.approx(history["val_loss"].min())
    assert row["best_accuracy"] == pytest.approx(history["accuracy"].max())


def test_a_seeded_trial_repeats_exactly(tiny_data, tiny_settings, tmp_path):
    a = run_trial(
        study="s", trial_id="a", values=VALUES, settings=tiny_settings, data_dir=tiny_data, out_dir=tmp_path / "a"
    )
    b = run_trial(
        study="s", trial_id="a", values=VALUES, settings=tiny_settings, data_dir=tiny_data, out_dir=tmp_path / "b"
    )
    assert a["objective_value"] == b["objective_value"]
    assert (
        pd.read_csv(tmp_path / "a" / "history.csv")["loss"].tolist()
        == pd.read_csv(tmp_path / "b" / "history.csv")["loss"].tolist()
    )


def test_early_stopping_uses_the_patience(tiny_data, tiny_settings, tmp_path):
    settings = {**tiny_settings, "epochs": 30, "patience": 1}
    record = run_trial(
        study="s",
        trial_id="es",
        values={**VALUES, "learning_rate": 0.05},
        settings=settings,
        data_dir=tiny_data,
        out_dir=tmp_path,
    )
    assert record["status"] == "completed"
    assert record["epochs_run"] < 30
    assert record["epochs_run"] <= record["objective_epoch"] + 1


@pytest.mark.parametrize(
    "function, needle",
    [
        ("raises", "RuntimeError: this layer stack cannot be built"),
        ("not_a_model", "must return a keras.Model"),
        ("diverges", "NaN"),
        ("out_of_memory", "OOM when allocating"),
    ],
)
def test_a_failing_trial_is_recorded_failed_and_the_job_succeeds(function, needle, tiny_data, tiny_settings, tmp_path):
    settings = {**tiny_settings, "model": {"build_model": f"{ROOT}/tests/models/broken.py:{function}"}}
    record = run_trial(
        study="s",
        trial_id="bad",
        values={"units": 8, "batch_size": 32},
        settings=settings,
        data_dir=tiny_data,
        out_dir=tmp_path,
    )
    assert record["status"] == "failed"
    assert needle in record["error"]
    row = pd.read_csv(tmp_path / "metrics.csv", keep_default_na=False).iloc[0]
    assert row["status"] == "failed" and needle in row["error"]
    assert (tmp_path / "history.csv").exists()
    assert math.isnan(float(record["objective_value"]))


def test_a_trial_records_the_size_and_sha256_of_its_model_and_a_failed_one_leaves_it_empty(
    tiny_data, tiny_settings, tmp_path
):
    import hashlib

    record = run_trial(
        study="s", trial_id="ok", values=VALUES, settings=tiny_settings, data_dir=tiny_data, out_dir=tmp_path / "ok"
    )
    model = (tmp_path / "ok" / "model.keras").read_bytes()
    row = pd.read_csv(tmp_path / "ok" / "metrics.csv").iloc[0]
    assert row["model_bytes"] == record["model_bytes"] == len(model) > 0
    assert row["model_sha256"] == record["model_sha256"] == hashlib.sha256(model).hexdigest()
    settings = {**tiny_settings, "model": {"build_model": f"{ROOT}/tests/models/broken.py:raises"}}
    failed = run_trial(
        study="s", trial_id="bad", values={"units": 8}, settings=settings, data_dir=tiny_data, out_dir=tmp_path / "bad"
    )
    assert failed["status"] == "failed" and failed["model_bytes"] == 0
    assert (tmp_path / "bad" / "model.keras").read_bytes() == b""


# What a build_model(hp) meets that its configuration does not cause.
TRANSIENT = {
    "module not importable": "    import a_module_that_is_nowhere\n",
    # Keras wraps the failed download of pretrained weights in a plain Exception
    "download failed": "    import keras\n    keras.utils.get_file('w.h5', 'file:///nonexistent/w.h5')\n",
    "device unavailable": (
        "    import tensorflow as tf\n    raise tf.errors.UnavailableError(None, None, 'socket closed')\n"
    ),
    "device failed": (
        "    import tensorflow as tf\n    raise tf.errors.InternalError(None, None, 'CUDA launch failure')\n"
    ),
}


@pytest.mark.parametrize("breakage", ["data file missing", "data file unreadable", *TRANSIENT])
def test_what_the_configuration_does_not_cause_fails_the_job_instead_of_the_trial(
    breakage, tiny_data, tiny_settings, tmp_path
):
    # A failed trial is cached for good; a data file that cannot be read, a module that cannot
    # be imported, a download or a device that fails must fail the job, so that --retries and
    # the next run try again.
    import shutil

    data = tmp_path / "data"
    shutil.copytree(tiny_data, data)
    settings = tiny_settings
    if breakage == "data file missing":
        (data / "x_train.npy").unlink()
    elif breakage == "data file unreadable":
        (data / "x_train.npy").write_bytes(b"\x93NUMPY garbage")
    else:
        module = tmp_path / "model.py"
        module.write_text("def build_model(hp):\n" + TRANSIENT[breakage])
        settings = {**tiny_settings, "model": {"build_model": f"{module}:build_model"}}
    # Whatever the error is, the job fails with it (not a failed trial's record).
    with pytest.raises(Exception):  # noqa: B017
        run_trial(study="s", trial_id="t", values=VALUES, settings=settings, data_dir=data, out_dir=tmp_path / "t")
    assert not (tmp_path / "t" / "metrics.csv").exists()


def test_a_users_build_model_trains_with_the_trials_values(tiny_data, tiny_settings, tmp_path, example_build_model):
    settings = {**tiny_settings, "model": {"build_model": f"{example_build_model}:build_model"}}
    values = {"units": 32, "extra_layer": True, "extra_units": 16, "learning_rate": 0.003, "batch_size": 32}
    record = run_trial(study="s", trial_id="u", values=values, settings=settings, data_dir=tiny_data, out_dir=tmp_path)
    assert record["status"] == "completed", record["error"]
    assert record["params"] == (784 * 32 + 32) + (32 * 16 + 16) + (16 * 10 + 10)


def test_final_retrains_on_train_and_validation_and_tests_once(tiny_data, tiny_settings, tmp_path):
    import json

    from snaketune.trial.final import retrain_and_test

    best = {"trial_id": "abc", "strategy": "grid", "hyperparameters": VALUES, "objective_epoch": 2}
    record = retrain_and_test(
        best=best,
        settings=tiny_settings,
        data_dir=tiny_data,
        model_path=tmp_path / "model.keras",
        metrics_path=tmp_path / "test_metrics.json",
    )
    saved = json.loads((tmp_path / "test_metrics.json").read_text())
    assert saved == record
    assert record["epochs"] == 2 and record["train_samples"] == 200 and record["test_samples"] == 10000
    assert 0.0 <= record["test_accuracy"] <= 1.0 and record["test_accuracy"] > 0.3
    assert (tmp_path / "model.keras").stat().st_size > 0


def test_the_builtin_cnn_trains(tiny_data, tiny_settings, tmp_path):
    settings = {**tiny_settings, "model": {"type": "cnn"}}
    values = {
        "activation": "relu",
        "filters": 16,
        "conv_blocks": 1,
        "units": 32,
        "dropout": 0.0,
        "learning_rate": 0.003,
        "batch_size": 64,
    }
    record = run_trial(
        study="s", trial_id="cnn", values=values, settings=settings, data_dir=tiny_data, out_dir=tmp_path
    )
    assert record["status"] == "completed", record["error"]
    assert record["params"] == (3 * 3 * 16 + 16) + (14 * 14 * 16 * 32 + 32) + (32 * 10 + 10)


def test_final_can_search_the_best_epoch_first(tiny_data, tiny_settings, tmp_path):
    from snaketune.trial.final import retrain_and_test

    settings = {**tiny_settings, "patience": 1}
    best = {"trial_id": "abc", "hyperparameters": VALUES, "objective_epoch": 1}
    record = retrain_and_test(
        best=best,
        settings=settings,
        data_dir=tiny_data,
        max_epochs=6,
        model_path=tmp_path / "model.keras",
        metrics_path=tmp_path / "test_metrics.json",
    )
    assert 1 <= record["epochs"] <= 6 and record["epochs_from"] == "validation, searched up to 6"
    assert record["search_seconds"] > 0


def test_final_cosine_decay_anneals_the_learning_rate_over_the_retraining(tiny_data, tiny_settings, tmp_path):
    import keras

    from snaketune.trial.final import retrain_and_test

    best = {"trial_id": "abc", "hyperparameters": VALUES, "objective_epoch": 4}
    record = retrain_and_test(
        best=best,
        settings=tiny_settings,
        data_dir=tiny_data,
        learning_rate_decay="cosine",
        model_path=tmp_path / "model.keras",
        metrics_path=tmp_path / "test_metrics.json",
    )
    assert record["learning_rate_decay"] == "cosine" and record["epochs"] == 4
    model = keras.saving.load_model(tmp_path / "model.keras")
    # the last of 4 epochs ran at lr * (1 + cos(3π/4)) / 2
    last = float(keras.ops.convert_to_numpy(model.optimizer.learning_rate))
    assert last == pytest.approx(VALUES["learning_rate"] * (1 + math.cos(3 * math.pi / 4)) / 2, rel=1e-5)


def test_the_builtin_mlp_trains_alike_on_images_in_0_1_and_floats_in_0_255(mnist_path, tiny_settings, tmp_path):
    # Float pixels in 0..255 are not scaled when the data is prepared (only integer pixels
    # are); the mlp's Normalization layer, set to the training split's statistics, makes the
    # two the same inputs.
    from snaketune.data.prepared import prepare
    from snaketune.data.sources import load_npz

    arrays = {k: v[:250] for k, v in load_npz(mnist_path).items()}
    scores = {}
    for kind, x in (("uint8", arrays["x_train"]), ("float 0..255", arrays["x_train"].astype("float32"))):
        data_dir = tmp_path / "data" / kind
        prepare({**arrays, "x_train": x}, data_dir, validation_split=0.2, subset=None, seed=0, source="t")
        record = run_trial(
            study="s",
            trial_id=kind,
            values=VALUES,
            settings={**tiny_settings, "epochs": 3},
            data_dir=data_dir,
            out_dir=tmp_path / kind,
        )
        scores[kind] = record["objective_value"]
    assert scores["uint8"] > 0.5
    assert abs(scores["uint8"] - scores["float 0..255"]) < 0.02, scores


def test_a_metric_of_several_values_does_not_stop_a_trial(tiny_settings, tmp_path):
    # Precision at two thresholds reports an array of two: kept out of the history, the rest
    # is recorded as usual.
    import numpy as np

    from snaketune.data.prepared import prepare

    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(120, 4)).astype("float32"), (np.arange(120) % 2)
    prepare(
        {"x_train": x[:100], "y_train": y[:100], "x_test": x[100:], "y_test": y[100:]},
        tmp_path / "data",
        validation_split=0.25,
        subset=None,
        seed=0,
        source="t",
        images=False,
    )
    module = tmp_path / "two_thresholds.py"
    module.write_text(
        "import keras\n"
        "def build_model(hp):\n"
        "    inputs = keras.Input(shape=(4,))\n"
        "    x = keras.layers.Dense(hp.Int('units', 4, 8), activation='relu')(inputs)\n"
        "    model = keras.Model(inputs, keras.layers.Dense(1, activation='sigmoid')(x))\n"
        "    model.compile(optimizer='adam', loss='binary_crossentropy',\n"
        "                  metrics=['accuracy', keras.metrics.Precision(thresholds=[0.3, 0.7], name='p')])\n"
        "    return model\n"
    )
    settings = {**tiny_settings, "model": {"build_model": f"{module}:build_model"}}
    record = run_trial(
        study="s",
        trial_id="p",
        values={"units": 4},
        settings=settings,
        data_dir=tmp_path / "data",
        out_dir=tmp_path / "t",
    )
    assert record["status"] == "completed", record["error"]
    assert "val_accuracy" in pd.read_csv(tmp_path / "t" / "history.csv") and "best_val_accuracy" in record


SCORED_HYPERMODEL = """
import keras
import keras_tuner


class Scored(keras_tuner.HyperModel):
    def build(self, hp):
        model = keras.Sequential([keras.Input((28, 28, 1)), keras.layers.Flatten(),
                                  keras.layers.Dense(hp.Int("units", 8, 16, step=8), activation="relu"),
                                  keras.layers.Dense(10, activation="softmax")])
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
        return model

    def fit(self, hp, model, x, y, validation_data=None, **kwargs):
        model.fit(x, y, validation_data=validation_data, **kwargs)
        # the final model retrains without validation data
        return {"my_score": float(model.evaluate(*(validation_data or (x, y)), verbose=0)[1])}
"""


def test_a_hypermodel_whose_fit_returns_its_objective_once_is_tuned_retrained_and_plotted(
    tiny_data, tiny_settings, tmp_path
):
    # Keras Tuner reads a dict that fit returns as the trial's metrics: the objective is not
    # in the per-epoch history, and what follows the trial must not need it there.
    from snaketune.report.plots import plot_learning_curves
    from snaketune.search.objective import objective_from
    from snaketune.trial.final import retrain_and_test

    module = tmp_path / "scored.py"
    module.write_text(SCORED_HYPERMODEL)
    settings = {
        **tiny_settings,
        "model": {"hypermodel": f"{module}:Scored"},
        "objective": {"name": "my_score", "direction": "max"},
    }
    values = {"units": 8, "batch_size": 32}
    record = run_trial(
        study="s", trial_id="d", values=values, settings=settings, data_dir=tiny_data, out_dir=tmp_path / "trial"
    )
    assert record["status"] == "completed", record["error"]
    assert 0.0 <= record["objective_value"] <= 1.0 and record["objective_epoch"] == 1
    assert "my_score" not in pd.read_csv(tmp_path / "trial" / "history.csv")

    best = {"trial_id": "d", "hyperparameters": values, "objective_epoch": 1}
    final = retrain_and_test(
        best=best,
        settings=settings,
        data_dir=tiny_data,
        max_epochs=2,
        model_path=tmp_path / "model.keras",
        metrics_path=tmp_path / "test_metrics.json",
    )
    assert final["epochs"] == 2  # the last epoch, as a trial's dict is read

    trials = pd.DataFrame(
        [{"trial_id": "d", "strategy": "random", "status": "completed", "objective_value": record["objective_value"]}]
    )
    plot_learning_curves(
        trials,
        objective_from(settings["objective"]),
        histories={"d": tmp_path / "trial" / "history.csv"},
        path=tmp_path / "curves.png",
    )
    assert (tmp_path / "curves.png").stat().st_size > 0
