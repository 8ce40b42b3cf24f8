"""The prepared data on disk: a study's arrays split once into train, validation and test
.npy files with the features' statistics and an info.json, which every trial job loads in
milliseconds (memory-mapped)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from snaketune.core.atomic import atomic_path, write_json
from snaketune.data import task as task_module
from snaketune.data.sources import check, from_config, split_sizes

SPLITS = ("train", "val", "test")


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
    *,
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
                mean, variance = x_stats(a)
                with atomic_path(out_dir / f"stats{'.' + part if part else ''}.npz") as tmp:
                    with open(tmp, "wb") as fh:
                        np.savez(fh, mean=mean, variance=variance)
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


def x_stats(a) -> tuple[np.ndarray, np.ndarray]:
    """An x array's mean and variance over its rows. Feature vectors are normalised feature by
    feature; images (and other arrays of several axes per sample) as a whole, their values
    sharing one scale."""
    values = np.asarray(a).reshape(len(a), -1).astype(np.float64)
    axis = 0 if np.ndim(a) == 2 else None
    return values.mean(axis=axis), values.var(axis=axis)


def stats_of(train: tuple) -> tuple[dict, tuple]:
    """What feature_stats and target_stats give for the prepared training split, of other
    training rows (x, y): a fold's ({input: (mean, variance)}, (target mean, std))."""
    x, y = train
    xs = x if isinstance(x, dict) else {"": x}
    return {part: x_stats(a) for part, a in xs.items()}, (_target_stats_of(y) if not isinstance(y, dict) else None)


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
