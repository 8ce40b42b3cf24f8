"""Data from a function or a CSV, and the task the targets say."""

import json

import numpy as np
import pytest

from snaketune.core.errors import DataError
from snaketune.data import loader, prepared, tabular
from snaketune.data.task import check, infer_task


@pytest.mark.parametrize(
    "y, task",
    [
        (np.arange(30) % 10, "classification"),
        (np.arange(30) % 2, "binary"),
        ((np.arange(30) % 2).astype(np.float32).reshape(-1, 1), "binary"),
        (np.arange(30) % 2 == 0, "binary"),
        (np.stack([np.arange(30) % 2, np.arange(30) % 3 == 0], axis=1).astype(int), "multilabel"),
        (np.linspace(0, 1, 30), "regression"),
        (np.arange(60).reshape(30, 2), "regression"),
    ],
)
def test_the_task_is_inferred_from_the_targets(y, task):
    assert infer_task(y) == task


def arrays(n=30, y=None, **changes):
    rng = np.random.default_rng(0)
    given = {
        "x_train": rng.normal(size=(n, 4)).astype(np.float32),
        "y_train": np.arange(n) % 3 if y is None else y,
        "x_test": rng.normal(size=(10, 4)).astype(np.float32),
        "y_test": np.arange(10) % 3,
    }
    given.update(changes)
    return {k: v for k, v in given.items() if v is not None}


@pytest.mark.parametrize(
    "given, task, needle",
    [
        (
            arrays(y=np.linspace(0, 1, 30)),
            "classification",
            "must hold integer class labels 0..k-1 for a classification",
        ),
        (arrays(), "binary", "must hold only 0 and 1 for a binary task"),
        (
            arrays(y=np.stack([np.arange(30) % 3] * 2, axis=1), y_test=np.stack([np.arange(10) % 3] * 2, axis=1)),
            "classification",
            "one label per sample",
        ),
        (arrays(x_val=np.zeros((5, 4))), None, "has x_val without y_val"),
        (
            arrays(x_train={"a": np.zeros((30, 2)), "b": np.zeros((30, 3))}, x_test={"a": np.zeros((10, 2))}),
            None,
            "x_train has the arrays ['a', 'b'] but x_test has ['a']",
        ),
        (arrays(y_test=np.array([0.5] * 9 + [np.nan])), "regression", "y_test holds NaN"),
    ],
)
def test_bad_targets_for_the_task_are_named(given, task, needle):
    with pytest.raises(DataError, match=needle.replace("[", r"\[").replace("(", r"\(")):
        check(given, "t", task)


def test_several_inputs_and_outputs_are_checked_array_by_array():
    x = {"image": np.zeros((30, 8, 8)), "meta": np.zeros((30, 3))}
    y = {"kind": np.arange(30) % 3, "size": np.zeros(30)}
    given = {
        "x_train": x,
        "y_train": y,
        "x_test": {k: v[:10] for k, v in x.items()},
        "y_test": {k: v[:10] for k, v in y.items()},
    }
    summary = check(given, "t")
    assert summary["task"] is None and summary["inputs"] == {"image": [8, 8], "meta": [3]}
    with pytest.raises(DataError, match="is for one target array"):
        check(given, "t", "regression")


def test_prepared_data_of_several_inputs_loads_as_dicts(tmp_path):
    x = {"image": np.random.default_rng(0).random((40, 8, 8)), "meta": np.ones((40, 3))}
    given = {
        "x_train": x,
        "y_train": np.arange(40) % 2,
        "x_test": {k: v[:10] for k, v in x.items()},
        "y_test": np.arange(10) % 2,
    }
    info = prepared.prepare(given, tmp_path, validation_split=0.25, subset=None, seed=0, source="t", images=False)
    assert info["task"] == "binary" and info["x_arrays"] == ["image", "meta"]
    loaded, _ = prepared.load(tmp_path, splits=("train", "val", "test"))
    x_train, y_train = loaded["train"]
    assert set(x_train) == {"image", "meta"} and x_train["meta"].shape == (30, 3) and y_train.dtype == np.float32
    assert prepared.feature_stats(tmp_path, "meta")[1].tolist() == [0.0, 0.0, 0.0]


def test_own_validation_data_is_used_instead_of_a_split(tmp_path):
    info = prepared.prepare(
        arrays(x_val=np.zeros((7, 4)), y_val=np.arange(7) % 3),
        tmp_path,
        validation_split=0.5,
        subset=None,
        seed=0,
        source="t",
        images=False,
    )
    assert info["sizes"] == {"train": 30, "val": 7, "test": 10} and info["validation_split"] is None


# -- CSV ------------------------------------------------------------------------------------
CSV = (
    "age,colour,height,label\n"
    + "\n".join(f"{20 + i},{['red', 'blue', 'green'][i % 3]},{1.5 + i / 100},{['yes', 'no'][i % 2]}" for i in range(50))
    + "\n"
)


def test_a_csv_becomes_float_features_and_codes(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text(CSV)
    arrays_, described = tabular.read(path, "label", test_split=0.2, seed=0)
    assert arrays_["x_train"].shape == (40, 3) and arrays_["x_train"].dtype == np.float32
    assert described["categories"] == {"colour": ["blue", "green", "red"], "label": ["no", "yes"]}
    assert described["features"] == ["age", "colour", "height"]
    assert set(np.unique(arrays_["y_train"])) == {0, 1} and check(arrays_, "t")["task"] == "binary"
    picked, _ = tabular.read(path, "height", features=["age"], test_split=0.2)
    assert picked["x_train"].shape == (40, 1) and check(picked, "t")["task"] == "regression"


@pytest.mark.parametrize(
    "change, needle",
    [
        (lambda t: t.replace("\n21,blue", "\n,blue", 1), "missing values in column 'age' (1 rows)"),
        (lambda t: t, "data.target: no column 'price'"),
    ],
)
def test_bad_csvs_are_named(tmp_path, change, needle):
    path = tmp_path / "t.csv"
    path.write_text(change(CSV))
    with pytest.raises(DataError, match=needle.replace("(", r"\(").replace(")", r"\)")):
        tabular.read(path, "price" if "price" in needle else "label")


def test_a_test_file_gives_the_test_rows(tmp_path):
    (tmp_path / "train.csv").write_text(CSV)
    (tmp_path / "test.csv").write_text("\n".join(CSV.splitlines()[:11]) + "\n")
    arrays_, _ = tabular.read(tmp_path / "train.csv", "label", test=tmp_path / "test.csv")
    assert len(arrays_["y_train"]) == 50 and len(arrays_["y_test"]) == 10


# -- a loader function ---------------------------------------------------------------------
LOADER = """
import numpy as np

def as_dict():
    rng = np.random.default_rng(0)
    return {"x_train": rng.normal(size=(40, 3)), "y_train": rng.normal(size=40),
            "x_test": rng.normal(size=(10, 3)), "y_test": rng.normal(size=10)}

def as_keras():
    d = as_dict()
    return (d["x_train"], d["y_train"]), (d["x_test"], d["y_test"])

def lacking():
    return {"x_train": [1], "y_train": [1]}

def raising():
    raise OSError("the file the loader reads is gone")
"""


@pytest.fixture
def loader_file(tmp_path):
    path = tmp_path / "load.py"
    path.write_text(LOADER)
    return path


def test_a_loader_may_return_a_dict_or_keras_pairs(loader_file):
    first, second = loader.call(f"{loader_file}:as_dict"), loader.call(f"{loader_file}:as_keras")
    assert loader.arrays_sha256(first) == loader.arrays_sha256(second)
    assert check(first, "t")["task"] == "regression"


@pytest.mark.parametrize(
    "function, needle",
    [
        ("lacking", "returned no x_test, y_test"),
        ("raising", "raised OSError: the file the loader reads is gone"),
        ("nowhere", "has no function 'nowhere'"),
    ],
)
def test_a_bad_loader_is_named_with_what_it_did(loader_file, function, needle):
    with pytest.raises(DataError, match=needle):
        loader.call(f"{loader_file}:{function}")


def test_the_loader_check_runs_once_per_content_of_its_file(loader_file, tmp_path):
    summary = loader.check(f"{loader_file}:as_dict", None, tmp_path / "cache")
    assert summary["task"] == "regression" and len(summary["arrays_sha256"]) == 64
    assert len(list((tmp_path / "cache").iterdir())) == 1
    assert loader.check(f"{loader_file}:as_dict", None, tmp_path / "cache") == json.loads(json.dumps(summary))
    with pytest.raises(DataError, match="returned no x_test"):
        loader.check(f"{loader_file}:lacking", None, tmp_path / "cache")


def test_a_loaders_input_files_are_part_of_its_check_and_identity(tmp_path):
    (tmp_path / "values.txt").write_text("1 2 3 4 5 6 7 8 9 10")
    (tmp_path / "reads.py").write_text(
        "import numpy as np\n"
        f"def load():\n    v = np.loadtxt({str(tmp_path / 'values.txt')!r})\n"
        "    return {'x_train': v[:, None], 'y_train': v * 2, 'x_test': v[:, None], 'y_test': v * 2}\n"
    )
    spec = f"{tmp_path / 'reads.py'}:load"
    first = loader.check(spec, None, tmp_path / "cache", [tmp_path / "values.txt"])
    (tmp_path / "values.txt").write_text("1 2 3 4 5 6 7 8 9 11")
    second = loader.check(spec, None, tmp_path / "cache", [tmp_path / "values.txt"])
    assert first["arrays_sha256"] != second["arrays_sha256"]


def test_one_hot_rows_are_a_classification_kept_as_rows_for_a_users_model(tmp_path):
    # keras.utils.to_categorical's rows, as Keras Tuner's guide prepares MNIST
    given = arrays(y=np.eye(3)[np.arange(30) % 3], y_test=np.eye(3)[np.arange(10) % 3])
    summary = check(given, "t")
    assert summary["task"] == "classification" and summary["num_classes"] == 3 and summary["one_hot"]
    info = prepared.prepare(given, tmp_path, validation_split=0.25, subset=None, seed=0, source="t", images=False)
    assert info["outputs"] == 3 and info["one_hot"]
    as_given, _ = prepared.load(tmp_path)
    labels, _ = prepared.load(tmp_path, labels=True)
    assert as_given["train"][1].shape == (22, 3) and as_given["train"][1].dtype == np.float32
    assert labels["train"][1].shape == (22,)
    np.testing.assert_array_equal(labels["val"][1], as_given["val"][1].argmax(axis=1))
    # a column of the one-hot width that no training row uses is still a class
    wide = arrays(y=np.eye(4)[np.arange(30) % 3], y_test=np.eye(4)[np.arange(10) % 3])
    assert check(wide, "t")["num_classes"] == 4
    with pytest.raises(DataError, match="y_train holds one-hot rows but y_test does not"):
        check(arrays(y=np.eye(3)[np.arange(30) % 3], y_test=np.eye(3)[np.arange(10) % 3] * 2), "t")
    assert check(given, "t", "multilabel")["task"] == "multilabel"


def test_count_like_integers_ask_for_the_task():
    with pytest.raises(DataError, match="distinct integers up to 300: state data.task"):
        check(arrays(y=np.array([0, 5, 17, 300] * 7 + [1, 2]), y_test=np.arange(10)), "t")


@pytest.mark.parametrize(
    "y, task, needle",
    [
        (np.full(30, 2), "classification", "a single class \\(label 2\\)"),
        (np.ones(30, dtype=int), "binary", "one value only \\(1\\); a binary task needs both 0 and 1"),
        (np.full(30, 4.5), None, "one value only \\(4.5\\) in every row"),
        (np.eye(3)[np.zeros(30, dtype=int)], "classification", "a single class \\(label 0\\)"),
    ],
)
def test_a_target_that_never_varies_is_refused(y, task, needle):
    with pytest.raises(DataError, match=f"t: y_train has {needle}"):
        check(arrays(y=y, y_test=y[:10]), "t", task)


def test_a_csv_target_with_one_value_is_refused_naming_the_column(tmp_path):
    (tmp_path / "t.csv").write_text("a,b,price\n" + "".join(f"{i},{i * 2},7\n" for i in range(20)))
    with pytest.raises(DataError, match="data.target: column 'price' of '.*t.csv' holds one value only \\(7\\)"):
        tabular.read(tmp_path / "t.csv", "price")


def test_features_in_an_npz_are_not_taken_for_pixels(tmp_path):
    ids = np.arange(40 * 5).reshape(40, 5) % 50  # token ids, say
    info = prepared.prepare(
        {"x_train": ids, "y_train": np.arange(40) % 2, "x_test": ids[:10], "y_test": np.arange(10) % 2},
        tmp_path,
        validation_split=0.25,
        subset=None,
        seed=0,
        source="t",
    )
    assert info["inputs"] == {"": [5]}
    assert np.load(tmp_path / "x_train.npy").dtype == ids.dtype
