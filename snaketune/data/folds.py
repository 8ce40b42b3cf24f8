"""k-fold cross-validation over a study's training data: the rows each fold validates on.

The folds are drawn over the prepared training and validation splits together (every row but
the test split's), seeded by the data's seed, and stratified by class for a classification
(scikit-learn's StratifiedKFold, else KFold), so that each fold's validation rows hold the
classes in the proportions of the whole. They depend on k: fold 0 of 5 is not fold 0 of 3.
"""

from __future__ import annotations

import numpy as np

from snaketune.core.errors import ConfigError
from snaketune.data import prepared
from snaketune.data.task import parts, samples

# Data with validation arrays of its own: checked before any job (snaketune.study.checks) and
# again in the job.
OWN_VALIDATION = (
    "config: training.folds: the data gives validation arrays of its own (x_val, y_val), which k-fold "
    "cross-validation would fold into the training data: remove them from the data, or unset training.folds"
)


def validation_rows(y, k: int, seed: int, stratify: bool) -> list[np.ndarray]:
    """For each of the k folds, the sorted indices of the rows it validates on. `y`: the
    targets (an array, or a dict of arrays for a model of several outputs); `stratify`: by
    the class of each row (labels, or one-hot rows)."""
    from sklearn.model_selection import KFold, StratifiedKFold

    n = samples(y)
    if k > n:
        raise ConfigError(f"config: training.folds: {k} folds of {n} rows; at most {n}")
    rows = np.zeros(n)
    if stratify:
        labels = np.asarray(y)
        labels = labels.argmax(axis=1) if labels.ndim == 2 and labels.shape[1] > 1 else labels.reshape(n)
        if np.unique(labels, return_counts=True)[1].min() >= k:
            split = StratifiedKFold(n_splits=k, shuffle=True, random_state=seed).split(rows, labels)
            return [np.sort(val) for _, val in split]
        # a class of fewer than k rows cannot be in every fold: plain folds then
    split = KFold(n_splits=k, shuffle=True, random_state=seed).split(rows)
    return [np.sort(val) for _, val in split]


def _take(value, rows):
    if isinstance(value, dict):
        return {name: np.asarray(a)[rows] for name, a in value.items()}
    return np.asarray(value)[rows]


def fold(data: dict, info: dict, *, k: int, index: int, seed: int) -> dict:
    """`data` ({"train": (x, y), "val": (x, y)}, as snaketune.data.prepared.load gives it)
    laid out for fold `index` of `k`: trained on the other folds' rows, validated on its own."""
    if info.get("validation_split") is None:  # the data's own x_val and y_val
        raise ConfigError(OWN_VALIDATION)
    (x_train, y_train), (x_val, y_val) = data["train"], data["val"]
    x = prepared.concatenate(x_train, x_val)
    y = prepared.concatenate(y_train, y_val)
    stratify = info.get("task") in ("classification", "binary") and len(parts(y)) == 1
    validating = validation_rows(y, k, seed, stratify)[index]
    training = np.setdiff1d(np.arange(samples(y)), validating, assume_unique=True)
    return {"train": (_take(x, training), _take(y, training)), "val": (_take(x, validating), _take(y, validating))}
