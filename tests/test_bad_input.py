"""Bad input corpus: each bad config, model or data file stops `snakemake --cores 1` before any job.

Every case runs the real command line in a copy of the finished tiny study, so that "nothing
already in results/ changed" means something: each file under results/ keeps its path, size,
mtime and content, and no file or folder appears. Each must exit non-zero with a message that
names the problem and the key or file, and start no job (training or otherwise).
"""

import copy
import hashlib
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import ROOT, snakemake, write_config

pytestmark = pytest.mark.workflow

# What Snakemake prints when it starts a job, or has finished one.
JOB_STARTED = re.compile(r"^\s*(local)?(rule|checkpoint) \w+:|Finished job|Select jobs to execute", re.M)


@pytest.fixture(scope="module")
def study(tiny_study, tmp_path_factory):
    """A copy of the finished tiny study (mtimes kept), with the bad files the cases name."""
    source, config = tiny_study
    workdir = tmp_path_factory.mktemp("bad_input") / "study"
    shutil.copytree(source, workdir, copy_function=shutil.copy2, symlinks=True)
    (workdir / "models").mkdir()
    shutil.copy2(ROOT / "tests" / "models" / "broken.py", workdir / "models" / "broken.py")
    shutil.copy2(ROOT / "examples" / "build_model.py", workdir / "models" / "example.py")
    (workdir / "models" / "cannot_import.py").write_text("import a_module_that_is_nowhere\n")
    data = workdir / "bad_data"
    data.mkdir()
    (data / "notes.npz").write_text("not a zip archive\n")
    _savez(data / "good.npz")
    _savez(data / "no_y_test.npz", y_test=None)
    _savez(data / "flat_images.npz", x_train=np.zeros((40, 64), dtype=np.uint8))
    _savez(data / "short_labels.npz", y_train=np.arange(39) % 3)
    _savez(data / "test_label_7.npz", y_test=np.array([0, 1, 2] * 3 + [7]))
    _savez(data / "negative_label.npz", y_train=np.arange(40) % 3 - 1)
    _savez(data / "float_labels.npz", y_train=(np.arange(40) % 3) + 0.5)
    _savez(data / "mixed_sizes.npz", x_test=np.zeros((10, 9, 9), dtype=np.uint8))
    _savez(data / "nan_pixels.npz", x_train=np.where(np.arange(40 * 64).reshape(40, 8, 8) == 200, np.nan, 0.5))
    _savez(data / "twenty_classes.npz", y_train=np.arange(40) % 20, y_test=np.arange(10) % 10)
    _savez(data / "ten_classes.npz", y_train=np.arange(40) % 10, y_test=np.arange(10) % 10)
    _savez(data / "real_targets.npz", y_train=np.linspace(0, 1, 40), y_test=np.linspace(0, 1, 10))
    _savez(
        data / "float_pixels.npz",
        x_train=np.linspace(0, 255, 40 * 64, dtype=np.float32).reshape(40, 8, 8, 1),
        x_test=np.zeros((10, 8, 8, 1), dtype=np.float32),
    )
    (data / "missing.csv").write_text("a,b,label\n1,2,0\n3,,1\n" + "5,6,0\n" * 20)
    shutil.copytree(ROOT / "tests" / "data" / "tables", data / "tables")  # the CSV corpus of test_tables.py
    (workdir / "models" / "loaders.py").write_text(
        "def raising():\n    raise FileNotFoundError('data/raw.parquet')\n\n"
        "def lacking():\n    return {'x_train': [[1.0]], 'y_train': [1]}\n"
    )
    return workdir, config


def _savez(path, **changes):
    rng = np.random.default_rng(0)
    arrays = {
        "x_train": rng.integers(0, 255, (40, 8, 8), dtype=np.uint8),
        "y_train": np.arange(40) % 3,
        "x_test": rng.integers(0, 255, (10, 8, 8), dtype=np.uint8),
        "y_test": np.arange(10) % 3,
    }
    for key, value in changes.items():
        if value is None:
            del arrays[key]
        else:
            arrays[key] = value
    np.savez_compressed(path, **arrays)


def snapshot(results: Path) -> dict:
    """Every path under results/: a folder, or a file's size, mtime and sha256."""
    state = {}
    for path in sorted(results.rglob("*")):
        if path.is_dir():
            state[str(path)] = "folder"
        else:
            stat = path.stat()
            state[str(path)] = (stat.st_size, stat.st_mtime_ns, hashlib.sha256(path.read_bytes()).hexdigest())
    return state


def fails_cleanly(study, change, *needles) -> str:
    """Run `snakemake --cores 1` with `change(config)` applied; the study's config is restored after."""
    workdir, config = study
    bad = copy.deepcopy(config)
    change(bad)
    before = snapshot(workdir / "results")
    assert len(before) > 50, "the copy must hold the finished study"
    write_config(workdir, bad)
    try:
        result = snakemake(workdir, "--cores", "1", check=False)
    finally:
        write_config(workdir, config)
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    for needle in needles:
        assert needle in output, f"{needle!r} not in:\n{output[-3000:]}"
    assert not JOB_STARTED.search(output), f"a job started:\n{output[-3000:]}"
    assert snapshot(workdir / "results") == before
    return output


def setting(dotted: str, value):
    """A change that sets one key, e.g. setting('strategies.random.trials', 0)."""

    def change(config):
        *parents, last = dotted.split(".")
        node = config
        for key in parents:
            node = node.setdefault(key, {})
        node[last] = value

    return change


def build_model(spec: str):
    def change(config):
        config["model"] = {"build_model": spec}

    return change


def data_file(name: str, **extra):
    def change(config):
        config["data"] = {**config["data"], "path": f"bad_data/{name}", **extra}

    return change


def test_the_copy_is_a_finished_study_with_nothing_to_do(study):
    workdir, _ = study
    result = snakemake(workdir, "-n")
    assert "Nothing to be done" in result.stdout + result.stderr


# -- config type errors --------------------------------------------------------------------
def test_type_error_epochs_not_an_integer(study):
    fails_cleanly(study, setting("training.epochs", "five"), "config: training.epochs: expected integer, got 'five'")


def test_type_error_budget_a_float(study):
    fails_cleanly(
        study, setting("strategies.random.trials", 2.5), "config: strategies.random.trials: expected integer, got 2.5"
    )


def test_type_error_hyperparameter_bound_not_a_number(study):
    fails_cleanly(
        study,
        setting("space.units", {"type": "int", "min": "sixteen", "max": 64}),
        "config: space.units.min: expected a number, got 'sixteen'",
    )


def test_type_error_subset_not_a_number(study):
    fails_cleanly(study, setting("data.subset", "all"), "config: data.subset: expected ['integer', 'null'], got 'all'")


def test_validation_split_out_of_range(study):
    fails_cleanly(
        study,
        setting("data.validation_split", 1.5),
        "config: data.validation_split: 1.5 is greater than or equal to the maximum of 1",
    )


def test_gpu_sharing_with_several_gpus_per_job(study):
    fails_cleanly(
        study,
        lambda config: config.setdefault("resources", {}).update(gpu=2, trials_per_gpu=2),
        "config: resources.trials_per_gpu: 2 needs resources.gpu: 1",
    )


# -- unknown keys --------------------------------------------------------------------------
def test_unknown_top_level_key(study):
    fails_cleanly(study, setting("colour", "red"), "config: unknown key 'colour'")


def test_unknown_nested_key(study):
    fails_cleanly(study, setting("strategies.random.seeed", 3), "config: unknown key 'strategies.random.seeed'")


def test_unknown_hyperparameter_key(study):
    fails_cleanly(
        study,
        setting("space.units", {"type": "int", "min": 16, "max": 64, "stepp": 16}),
        "config: space.units: unknown key(s) ['stepp'] for type int",
    )


# -- empty or inverted ranges, log sampling --------------------------------------------------
def test_inverted_int_range(study):
    fails_cleanly(
        study,
        setting("space.units", {"type": "int", "min": 64, "max": 16}),
        "config: space.units: min (64) is greater than max (16)",
    )


def test_inverted_float_range(study):
    fails_cleanly(
        study,
        setting("space.learning_rate", {"type": "float", "min": 0.1, "max": 0.001}),
        "config: space.learning_rate: min (0.1) is greater than max (0.001)",
    )


def test_empty_choice(study):
    fails_cleanly(
        study,
        setting("space.batch_size", {"type": "choice", "values": []}),
        "config: space.batch_size.values: a choice needs at least one value",
    )


def test_log_sampling_with_min_zero(study):
    fails_cleanly(
        study,
        setting("space.learning_rate", {"type": "float", "min": 0, "max": 0.1, "sampling": "log"}),
        "config: space.learning_rate: log sampling needs min > 0, got min = 0",
    )


def test_log_sampling_with_negative_min(study):
    fails_cleanly(
        study,
        setting("space.units", {"type": "int", "min": -16, "max": 64, "sampling": "log"}),
        "config: space.units: log sampling needs min > 0, got min = -16",
    )


# -- grid and budgets -------------------------------------------------------------------------
def test_empty_grid(study):
    fails_cleanly(
        study, setting("strategies.grid.values", {}), "config: strategies.grid.values: {} should be non-empty"
    )


def test_empty_grid_axis(study):
    fails_cleanly(
        study,
        setting("strategies.grid.values", {"learning_rate": []}),
        "config: strategies.grid.values.learning_rate: [] should be non-empty",
    )


def test_grid_value_outside_its_range(study):
    fails_cleanly(
        study,
        setting("strategies.grid.values", {"learning_rate": [0.5]}),
        "config: strategies.grid.values.learning_rate: 0.5 is not a value of space.learning_rate",
    )


def test_random_budget_zero(study):
    fails_cleanly(
        study,
        setting("strategies.random.trials", 0),
        "config: strategies.random.trials: 0 is less than the minimum of 1",
    )


def test_bayesian_budget_zero(study):
    fails_cleanly(
        study,
        setting("strategies.bayesian.trials", 0),
        "config: strategies.bayesian.trials: 0 is less than the minimum of 1",
    )


def test_hyperband_factor_one(study):
    fails_cleanly(
        study,
        setting("strategies.hyperband", {"max_epochs": 9, "factor": 1}),
        "config: strategies.hyperband.factor: 1 is less than the minimum of 2",
    )


def test_replicates_zero(study):
    fails_cleanly(study, setting("replicates", 0), "config: replicates: 0 is less than the minimum of 1")


# -- unknown model or strategy ----------------------------------------------------------------
def test_unknown_model_type(study):
    fails_cleanly(
        study, setting("model.type", "transformer"), "config: model.type: expected one of mlp, cnn, got 'transformer'"
    )


def test_unknown_strategy(study):
    fails_cleanly(
        study,
        setting("strategies.annealing", {"trials": 3}),
        "config: unknown key 'strategies.annealing'; expected one of: bayesian, gp, grid, hyperband, random, tpe",
    )


# -- a user's build_model ---------------------------------------------------------------------
def test_build_model_file_missing(study):
    fails_cleanly(
        study,
        build_model("models/nowhere.py:build_model"),
        "config: model.build_model: file 'models/nowhere.py' not found",
    )


def test_build_model_without_that_function(study):
    fails_cleanly(
        study,
        build_model("models/broken.py:nothing_here"),
        "config: model.build_model: 'models/broken.py' has no function 'nothing_here'",
    )


def test_build_model_file_fails_to_import(study):
    fails_cleanly(
        study,
        build_model("models/cannot_import.py:build_model"),
        "config: model.build_model: importing 'models/cannot_import.py' raised ModuleNotFoundError",
    )


def test_build_model_raises(study):
    fails_cleanly(
        study,
        build_model("models/broken.py:raises"),
        "config: model.build_model: 'models/broken.py:raises' raised RuntimeError: this layer stack cannot be built",
    )


def test_build_model_returns_something_that_is_not_a_model(study):
    fails_cleanly(
        study,
        build_model("models/broken.py:not_a_model"),
        "config: model.build_model: 'models/broken.py:not_a_model' must return a keras.Model, got str",
    )


def test_build_model_never_asks_for_a_declared_hyperparameter(study):
    # the tiny study's space declares activation, which the example build_model does not use
    fails_cleanly(
        study,
        build_model("models/example.py:build_model"),
        "config: space.activation: build_model never asks for 'activation'",
    )


def test_grid_value_outside_the_range_build_model_declares(study):
    def change(config):
        build_model("models/example.py:build_model")(config)
        config["space"] = {}
        config["strategies"]["grid"]["values"] = {"units": [48]}

    fails_cleanly(study, change, "config: strategies.grid.values.units: 48 is not a value of space.units")


# -- the data file ----------------------------------------------------------------------------
def test_data_file_missing(study):
    fails_cleanly(study, data_file("nowhere.npz"), "config: data.path: file 'bad_data/nowhere.npz' not found")


def test_data_file_not_an_npz(study):
    fails_cleanly(
        study, data_file("notes.npz"), "config: data.path: 'bad_data/notes.npz' is not a readable .npz file (BadZipFile"
    )


def test_data_file_lacks_an_array(study):
    fails_cleanly(study, data_file("no_y_test.npz"), "config: data.path: 'bad_data/no_y_test.npz' lacks y_test")


def test_data_samples_of_the_wrong_shape(study):
    fails_cleanly(
        study,
        data_file("flat_images.npz"),
        "config: data.path: 'bad_data/flat_images.npz': x_train samples of shape (64,) and x_test "
        "samples of shape (8, 8) differ",
    )


def test_data_labels_do_not_match_the_images(study):
    fails_cleanly(
        study,
        data_file("short_labels.npz"),
        "config: data.path: 'bad_data/short_labels.npz': the train arrays differ in length: x_train has "
        "40 rows, y_train has 39 rows",
    )


def test_data_train_and_test_images_differ_in_shape(study):
    fails_cleanly(
        study,
        data_file("mixed_sizes.npz"),
        "config: data.path: 'bad_data/mixed_sizes.npz': x_train samples of shape (8, 8) and x_test "
        "samples of shape (9, 9) differ",
    )


def test_data_with_nan(study):
    fails_cleanly(
        study,
        data_file("nan_pixels.npz"),
        "config: data.path: 'bad_data/nan_pixels.npz': x_train holds NaN or infinite values (the first in "
        "row 3); fill or drop them first",
    )


def test_float_images_in_0_255_for_the_cnn_which_does_not_normalise(study):
    def change(config):
        data_file("float_pixels.npz")(config)
        config["model"] = {"type": "cnn"}

    fails_cleanly(
        study,
        change,
        "config: model.type: the built-in cnn takes images scaled to [0, 1]",
        "x_train runs from 0 to 255: scale it (x / 255 for 8-bit pixels)",
    )


def test_data_csv_with_missing_values(study):
    def change(config):
        config["data"] = {"csv": "bad_data/missing.csv", "target": "label", "validation_split": 0.25}

    fails_cleanly(study, change, "config: data.csv: 'bad_data/missing.csv' has missing values in column 'b' (1 rows)")


def test_data_csv_target_with_a_typo_is_not_taken_for_class_labels(study):
    # read as text, its 24 prices would be 24 classes; the other files of the corpus are
    # refused by the same check (tests/test_tables.py checks each through config.check_data)
    def change(config):
        config["data"] = {"csv": "bad_data/tables/target_typo.csv", "target": "price", "validation_split": 0.25}

    fails_cleanly(
        study,
        change,
        "config: data.csv: 'bad_data/tables/target_typo.csv': column 'price' holds numbers "
        "but for 1 of its 24 values, '21.5o' (line 16)",
    )


@pytest.mark.parametrize(
    "function, needle",
    [
        ("raising", "config: data.loader: 'models/loaders.py:raising' raised FileNotFoundError: data/raw.parquet"),
        ("lacking", "config: data.loader: 'models/loaders.py:lacking' returned no x_test, y_test"),
    ],
)
def test_data_loader_that_fails(study, function, needle):
    def change(config):
        config["data"] = {"loader": f"models/loaders.py:{function}"}

    fails_cleanly(study, change, needle)


def test_data_test_label_out_of_range(study):
    fails_cleanly(
        study,
        data_file("test_label_7.npz"),
        "config: data.path: 'bad_data/test_label_7.npz': y_test has label 7, but y_train's labels only go up to 2",
    )


def test_data_negative_label(study):
    fails_cleanly(
        study, data_file("negative_label.npz"), "config: data.path: 'bad_data/negative_label.npz': y_train has label -1"
    )


def test_data_labels_not_integers_make_a_regression_whose_objective_is_not_reported(study):
    def change(config):
        data_file("float_labels.npz")(config)
        config["training"] = {**config.get("training", {}), "objective": "val_accuracy"}

    fails_cleanly(
        study,
        change,
        "config: training.objective: the model does not report 'val_accuracy'; it reports loss, mae, val_loss, val_mae",
    )


def test_data_labels_not_integers_for_a_stated_classification(study):
    fails_cleanly(
        study,
        data_file("float_labels.npz", task="classification"),
        "config: data.path: 'bad_data/float_labels.npz': y_train must hold integer class labels",
    )


@pytest.mark.parametrize(
    "data, function, objective, needle",
    [
        ("good.npz", "uncompiled", "val_accuracy", "returns a model that is not compiled: call model.compile("),
        (
            "twenty_classes.npz",
            "ten_classes",
            "val_accuracy",
            "outputs 10 values per sample, but the targets have 20 classes (labels 0..19): end it with Dense(20,",
        ),
        ("real_targets.npz", "softmax_regressor", "val_mae", "ends in a softmax, but the targets are real numbers"),
        (
            "ten_classes.npz",
            "ten_classes",
            "val_auc",
            "config: training.objective: the model does not report 'val_auc'; it reports accuracy, loss, val_accuracy, "
            "val_loss",
        ),
    ],
)
def test_a_model_that_does_not_fit_the_data_or_objective(study, data, function, objective, needle):
    def change(config):
        config["data"] = {**config["data"], "path": f"bad_data/{data}"}
        config["model"] = {"build_model": f"models/broken.py:{function}"}
        config["space"] = {}
        config["strategies"] = {"random": {"trials": 1}}
        config["training"] = {**config.get("training", {}), "objective": objective}

    fails_cleanly(study, change, needle)


def test_data_file_fails_its_checksum(study):
    actual = hashlib.sha256((study[0] / "bad_data" / "good.npz").read_bytes()).hexdigest()
    fails_cleanly(
        study,
        data_file("good.npz", sha256="0" * 64),
        f"config: data.sha256: 'bad_data/good.npz' has sha256 {actual}, expected {'0' * 64}",
    )


def test_data_checksum_that_is_not_a_sha256(study):
    fails_cleanly(study, data_file("good.npz", sha256="abc123"), "config: data.sha256: 'abc123' does not match")


def test_data_split_that_leaves_no_validation_images(study):
    fails_cleanly(
        study,
        data_file("good.npz", subset=10, validation_split=0.01),
        "config: data.validation_split: 0.01 of 10 images leaves no training or no validation data",
    )
