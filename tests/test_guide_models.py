"""Models as Keras Tuner's "Getting started" and "Handling failed trials" guides write them:
built at their first fit (no keras.Input, a subclassed Model), HyperModels whose fit reads
hp.get, takes *args or validation_data=None and preprocesses the data, a model file with a
dataclass, layers of the user's own, and Keras Tuner's errors (imports TensorFlow)."""

import keras
import pandas as pd
import pytest
from conftest import ROOT
from keras_tuner import errors

from snaketune import models
from snaketune.core.errors import ConfigError
from snaketune.data import prepared
from snaketune.data import sources as data
from snaketune.trial import model_check, train
from snaketune.trial.final import retrain_and_test
from snaketune.trial.train import run_trial

MODELS = ROOT / "tests" / "models"
GUIDE = MODELS / "guide_models.py"
LAYERS = MODELS / "custom_layers.py"
VAL_ACCURACY = {"name": "val_accuracy", "direction": "max"}


@pytest.fixture(scope="module")
def guide_data(guide_mnist, tmp_path_factory):
    """The guide's MNIST slice (one-hot targets, 384 training and 128 validation images),
    prepared as the data job prepares it."""
    out = tmp_path_factory.mktemp("guide_data")
    prepared.prepare(data.load_npz(guide_mnist), out, validation_split=0.2, subset=None, seed=0, source="guide")
    return out


def spec(key, file, name, args=None):
    return {key: f"{file}:{name}", **({"args": args} if args else {})}


def check(model_spec, guide_mnist, cache):
    """The check before any job, on a few samples of the guide's data."""
    source = {"path": str(guide_mnist), "loader": None, "csv": None, "task": None}
    return model_check.check_user_model(
        model_spec,
        {},
        data=source,
        summary=data.check_file(guide_mnist, "data.path"),
        objective=VAL_ACCURACY,
        cache_dir=cache,
    )


def settings_for(model_spec):
    return {"model": model_spec, "epochs": 1, "patience": None, "seed": 0, "objective": VAL_ACCURACY}


def trial(model_spec, values, guide_data, out_dir, schedule=None):
    return run_trial(
        study="s",
        trial_id=out_dir.name,
        values=values,
        settings=settings_for(model_spec),
        data_dir=guide_data,
        out_dir=out_dir,
        schedule=schedule,
    )


def dense_params(inputs, units, classes=10):
    return inputs * units + units + units * classes + classes


def test_a_sequential_without_input_is_checked_trained_and_retrained(guide_mnist, guide_data, tmp_path):
    model_spec = spec("build_model", GUIDE, "sequential")
    assert set(check(model_spec, guide_mnist, tmp_path / "cache")["reported"]) >= {"val_accuracy", "loss"}
    record = trial(model_spec, {"units": 8}, guide_data, tmp_path / "t")
    assert record["status"] == "completed", record["error"]
    assert record["params"] == dense_params(28 * 28, 8)  # counted once its first fit built it
    final = retrain_and_test(
        best={"trial_id": "t", "hyperparameters": {"units": 8}, "objective_epoch": 1},
        settings=settings_for(model_spec),
        data_dir=guide_data,
        model_path=tmp_path / "model.keras",
        metrics_path=tmp_path / "test_metrics.json",
    )
    assert final["train_samples"] == 384 + 128 and 0 <= final["test_accuracy"] <= 1
    assert keras.models.load_model(tmp_path / "model.keras").count_params() == dense_params(28 * 28, 8)


def test_a_subclassed_model_is_checked_and_trained(guide_mnist, guide_data, tmp_path):
    model_spec = spec("build_model", GUIDE, "subclassed")
    assert set(check(model_spec, guide_mnist, tmp_path / "cache")["reported"]) >= {"val_accuracy", "loss"}
    record = trial(model_spec, {"units": 16}, guide_data, tmp_path / "t")
    assert record["status"] == "completed", record["error"]
    assert record["params"] == dense_params(28 * 28, 16)


@pytest.mark.parametrize(
    "model_spec",
    [
        spec("build_model", GUIDE, "sequential_of_5"),
        spec("build_model", GUIDE, "subclassed_of_5"),
        # built by its own fit, on images it crops first
        spec("hypermodel", GUIDE, "Cropped", {"classes": 5}),
        spec("hypermodel", GUIDE, "Cropped", {"classes": 5, "subclassed": True}),
    ],
    ids=["sequential", "subclassed", "hypermodel", "hypermodel's subclassed"],
)
def test_the_output_of_a_model_built_on_the_data_is_checked_against_the_targets(model_spec, guide_mnist, tmp_path):
    with pytest.raises(ConfigError) as error:
        check(model_spec, guide_mnist, tmp_path / "cache")
    assert "outputs 5 values per sample, but the targets have 10 classes" in str(error.value)
    assert str(error.value).startswith(f"config: model.{next(iter(model_spec))}: '{GUIDE}:")


def test_hyperband_resumes_a_sequential_without_input(guide_data, tmp_path):
    model_spec = spec("build_model", GUIDE, "sequential")
    parent = trial(
        model_spec,
        {"units": 8, "batch_size": 128},
        guide_data,
        tmp_path / "parent",
        schedule={"epochs": 1, "initial_epoch": 0},
    )
    child = trial(
        model_spec,
        {"units": 8, "batch_size": 128},
        guide_data,
        tmp_path / "child",
        schedule={"epochs": 2, "initial_epoch": 1, "parent": "parent"},
    )
    assert parent["status"] == child["status"] == "completed", (parent["error"], child["error"])
    assert pd.read_csv(tmp_path / "child" / "history.csv")["epoch"].tolist() == [1, 2]
    assert child["params"] == parent["params"] == dense_params(28 * 28, 8)
    model = keras.models.load_model(tmp_path / "child" / "model.keras")
    assert int(model.optimizer.iterations.numpy()) == 2 * 384 // 128  # the parent's steps went on


def test_a_hypermodel_whose_fit_crops_the_images_to_hp_get_image_size(guide_mnist, guide_data, tmp_path):
    model_spec = spec("hypermodel", GUIDE, "Cropped")
    checked = check(model_spec, guide_mnist, tmp_path / "cache")
    assert {hp["name"] for hp in checked["space"]} == {"image_size", "units"}
    record = trial(model_spec, {"image_size": 12, "units": 8}, guide_data, tmp_path / "t")
    assert record["status"] == "completed", record["error"]
    assert record["params"] == dense_params(12 * 12, 8)  # built on the cropped images


@pytest.mark.parametrize("name", ["Shuffled", "Normalized"])
def test_a_hypermodel_fit_with_the_guides_signatures_and_preprocessing(name, guide_mnist, guide_data, tmp_path):
    model_spec = spec("hypermodel", GUIDE, name)
    assert set(check(model_spec, guide_mnist, tmp_path / "cache")["reported"]) >= {"val_accuracy", "loss"}
    record = trial(model_spec, {"units": 8, "shuffle": True, "normalize": True}, guide_data, tmp_path / "t")
    assert record["status"] == "completed", record["error"]


def test_a_model_file_with_a_dataclass_and_postponed_annotations_loads(guide_data, tmp_path):
    record = trial(
        spec("build_model", MODELS / "dataclass_model.py", "build_model"), {"units": 8}, guide_data, tmp_path / "t"
    )
    assert record["status"] == "completed", record["error"]


@pytest.mark.parametrize("name", ["unregistered", "registered"])
def test_a_custom_layer_trains_resumes_and_its_final_model_loads(name, guide_data, tmp_path, monkeypatch):
    model_spec = spec("build_model", LAYERS, name)
    values = {"units": 8, "batch_size": 128}
    parent = trial(model_spec, values, guide_data, tmp_path / "parent", schedule={"epochs": 1, "initial_epoch": 0})
    assert parent["status"] == "completed", parent["error"]
    # The next round's job is a fresh process: Keras has not seen the file's registration yet.
    monkeypatch.delitem(keras.saving.get_custom_objects(), "snaketune_tests>Shift", raising=False)
    child = trial(
        model_spec,
        values,
        guide_data,
        tmp_path / "child",
        schedule={"epochs": 2, "initial_epoch": 1, "parent": "parent"},
    )
    assert child["status"] == "completed", child["error"]
    retrain_and_test(
        best={"trial_id": "parent", "hyperparameters": values, "objective_epoch": 1},
        settings=settings_for(model_spec),
        data_dir=guide_data,
        model_path=tmp_path / "model.keras",
        metrics_path=tmp_path / "test_metrics.json",
    )
    monkeypatch.delitem(keras.saving.get_custom_objects(), "snaketune_tests>Shift", raising=False)
    final = train.load_model(tmp_path / "model.keras", model_spec)
    assert {"Scale": "unregistered", "Shift": "registered"}[type(final.layers[1]).__name__] == name


SAVING = "but saving it (each trial saves its model) raised NotImplementedError: Object "


@pytest.mark.parametrize(
    "file, name, needle",
    [
        (LAYERS, "unsaveable", SAVING + "Block was created by passing non-serializable argument values"),
        (
            LAYERS,
            "local_layer",
            "but does not load again (Hyperband resumes a trial from its saved model): "
            "keras.models.load_model raised TypeError: Could not locate class 'Double'",
        ),
        (GUIDE, "subclassed_without_get_config", SAVING + "Unconfigured was created by passing"),
    ],
    ids=["layer without get_config", "class local to build_model", "Model without get_config"],
)
def test_a_custom_layer_keras_cannot_save_and_load_is_refused_by_the_check(file, name, needle, guide_mnist, tmp_path):
    with pytest.raises(ConfigError) as error:
        check(spec("build_model", file, name), guide_mnist, tmp_path / "cache")
    message = str(error.value)
    assert message.startswith(f"config: model.build_model: '{file}:{name}': the model trains")
    assert needle in message
    assert "get_config()" in message and "@keras.saving.register_keras_serializable()" in message


@pytest.mark.parametrize(
    "model_spec",
    [
        *(
            spec("build_model", MODELS / "keras_tuner_errors.py", name)
            for name in ("fatal", "fatal_value", "fatal_type", "fatal_runtime")
        ),
        spec("hypermodel", MODELS / "keras_tuner_errors.py", "FatalInFit"),
    ],
    ids=["FatalError", "FatalValueError", "FatalTypeError", "FatalRuntimeError", "in fit"],
)
def test_a_keras_tuner_fatal_error_fails_the_job_with_its_message(model_spec, guide_data, tmp_path):
    # Keras Tuner stops the search on it; a failed trial would be cached and the next run
    # would not show it again.
    with pytest.raises(errors.FatalError, match="the data set needs the user's attention"):
        trial(model_spec, {"units": 8}, guide_data, tmp_path / "t")
    assert not (tmp_path / "t" / "metrics.csv").exists()


@pytest.mark.parametrize("name", ["failed", "failed_from_os_error"])
def test_a_failed_trial_error_fails_the_trial_and_the_study_goes_on(name, guide_data, tmp_path):
    record = trial(
        spec("build_model", MODELS / "keras_tuner_errors.py", name), {"units": 8}, guide_data, tmp_path / "t"
    )
    assert record["status"] == "failed" and record["error"].startswith("FailedTrialError: ")
    assert (tmp_path / "t" / "metrics.csv").exists()


def test_a_function_of_the_users_named_as_one_of_keras_does_not_replace_it_when_a_model_loads(tmp_path):
    # Keras looks a saved "mse" up in custom_objects before its own losses.
    module = tmp_path / "helpers.py"
    module.write_text(
        "import keras\n"
        "def mse(y_true, y_pred):  # a helper of the user's, not the model's loss\n"
        "    return 0.0\n"
        "def build_model(hp):\n"
        "    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])\n"
        "    model.compile(optimizer='adam', loss='mse')\n"
        "    return model\n"
    )
    model_spec = spec("build_model", module, "build_model")
    import keras_tuner

    models.resolve(model_spec).build(keras_tuner.HyperParameters()).save(tmp_path / "model.keras")
    assert train.load_model(tmp_path / "model.keras", model_spec).loss == "mse"


def test_the_final_fit_is_given_validation_freq_only_where_fit_takes_it():
    from snaketune.trial.final import _takes

    def listed(hp, model, x, y, validation_data=None, epochs=1, callbacks=None, verbose=0, initial_epoch=0):
        pass

    def open_ended(hp, model, *args, **kwargs):
        pass

    assert _takes(open_ended, "validation_freq") and not _takes(listed, "validation_freq")
