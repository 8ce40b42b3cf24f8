"""What a data set asks of a model: its task, inferred from the targets, and the checks every
data set passes before any trial trains.

A data set is `x_<split>` and `y_<split>` for the splits train and test (and optionally val):
`x` one array of any shape or a dict of arrays (a model with several inputs), `y` an array or
a dict of arrays (several outputs). The task is what the built-in models adapt their head,
loss and metrics to:

- `classification`: integer labels 0..k-1, one per sample, or one-hot rows of k columns
  (softmax, sparse categorical cross-entropy, accuracy);
- `binary`: one column of 0/1 (sigmoid, binary cross-entropy, accuracy and AUC);
- `multilabel`: several columns of 0/1 (sigmoids, binary cross-entropy, accuracy and AUC);
- `regression`: real-valued targets (linear, mean squared error, mean absolute error).

Inferred where the targets say it: integer labels with more than two values are a
classification, and so are one-hot rows (exactly one 1 per row, as keras.utils.to_categorical
writes them; `data.task: multilabel` says otherwise); 0/1 in one column binary, 0/1 in several
columns multilabel, other numbers a regression. `data.task` states it where they do not
(integer targets to regress on, say).

A user's own model receives the targets as the data holds them (one-hot rows stay one-hot, a
dict stays a dict); the built-in models take one-hot rows as the labels they stand for.
"""

from __future__ import annotations

import numpy as np

from snaketune.core.errors import DataError

TASKS = ("classification", "binary", "multilabel", "regression")
# The metrics the built-in models compile for each task (besides the loss).
BUILTIN_METRICS = {
    "classification": ["accuracy"],
    "binary": ["accuracy", "auc"],
    "multilabel": ["accuracy", "auc"],
    "regression": ["mae"],
}
REQUIRED = ("x_train", "y_train", "x_test", "y_test")
OPTIONAL = ("x_val", "y_val")


def parts(value) -> dict:
    """The arrays of an x or y: {"": array} for one array, the dict itself for several."""
    return value if isinstance(value, dict) else {"": value}


def one_column(y) -> bool:
    """One target per sample: shape (n,) or (n, 1)."""
    return y.ndim == 1 or (y.ndim == 2 and y.shape[1] == 1)


def one_hot(y) -> bool:
    """Several 0/1 columns with exactly one 1 per row."""
    return (
        y.ndim == 2
        and y.shape[1] > 1
        and bool(np.isin(y, (0, 1)).all())
        and bool((np.asarray(y).sum(axis=1) == 1).all())
    )


# Integer targets are taken for class labels without data.task only while they look like
# labels: at most this many classes, and most numbers below the largest one in use.
MAX_INFERRED_CLASSES = 1000


def samples(value) -> int:
    """How many samples an x or y holds."""
    return len(next(iter(parts(value).values())))


def _name(key: str, part: str) -> str:
    return f"{key}[{part!r}]" if part else key


def check(arrays: dict, where: str, task: str | None = None) -> dict:
    """Validate the arrays (image arrays may be headers: only their shape and dtype are looked
    at); return what the model needs to know: the task, its outputs, the inputs' shapes."""
    missing = [k for k in REQUIRED if k not in arrays]
    if missing:
        raise DataError(
            f"{where} lacks {', '.join(missing)} (it has {', '.join(arrays) or 'nothing'}; "
            f"expected {', '.join(REQUIRED)}, and x_val, y_val optionally)"
        )
    if ("x_val" in arrays) != ("y_val" in arrays):
        raise DataError(
            f"{where} has {'x_val' if 'x_val' in arrays else 'y_val'} without "
            f"{'y_val' if 'x_val' in arrays else 'x_val'}; give both or neither"
        )
    splits = [s for s in ("train", "val", "test") if f"x_{s}" in arrays]
    for side in ("x", "y"):
        keys = {s: sorted(parts(arrays[f"{side}_{s}"])) for s in splits}
        if len({tuple(k) for k in keys.values()}) > 1:
            raise DataError(
                f"{where}: {side}_train has the arrays {keys['train']} but "
                + ", ".join(f"{side}_{s} has {k}" for s, k in keys.items() if s != "train")
            )
    for split in splits:
        lengths = {}
        for side in ("x", "y"):
            for part, array in parts(arrays[f"{side}_{split}"]).items():
                name = _name(f"{side}_{split}", part)
                if not hasattr(array, "shape") or not array.shape:
                    raise DataError(
                        f"{where}: {name} must be an array with one row per sample, got {type(array).__name__}"
                    )
                if not (np.issubdtype(array.dtype, np.number) or array.dtype == np.bool_):
                    raise DataError(f"{where}: {name} must hold numbers, got dtype {array.dtype}")
                if isinstance(array, np.ndarray) and np.issubdtype(array.dtype, np.floating):
                    bad = ~np.isfinite(array)
                    if bad.any():
                        row = int(np.argwhere(bad)[0][0])
                        raise DataError(
                            f"{where}: {name} holds NaN or infinite values (the first in row {row}); "
                            "fill or drop them first"
                        )
                lengths[name] = len(array)
        if len(set(lengths.values())) > 1:
            raise DataError(
                f"{where}: the {split} arrays differ in length: "
                + ", ".join(f"{n} has {k} rows" for n, k in lengths.items())
            )
        if not next(iter(lengths.values())):
            raise DataError(f"{where}: x_{split} and y_{split} hold no samples")
    for side in ("x", "y"):
        for part, array in parts(arrays[f"{side}_train"]).items():
            for split in splits[1:]:
                other = parts(arrays[f"{side}_{split}"])[part]
                if tuple(other.shape[1:]) != tuple(array.shape[1:]):
                    raise DataError(
                        f"{where}: {_name(f'{side}_train', part)} samples of shape {tuple(array.shape[1:])} "
                        f"and {_name(f'{side}_{split}', part)} samples of shape {tuple(other.shape[1:])} differ"
                    )
    summary = {
        "inputs": {part: list(a.shape[1:]) for part, a in parts(arrays["x_train"]).items()},
        # the range of each input read whole (an .npz's integer images are headers: scaled later)
        "x_range": {
            part: [float(a.min()), float(a.max())]
            for part, a in parts(arrays["x_train"]).items()
            if isinstance(a, np.ndarray) and a.size and np.issubdtype(a.dtype, np.number)
        },
    }
    if isinstance(arrays["y_train"], dict):
        if task:
            raise DataError(
                f"{where}: data.task '{task}' is for one target array; y is a dict of "
                f"{sorted(arrays['y_train'])} (several outputs): leave data.task out"
            )
        summary.update(task=None, outputs={p: list(a.shape[1:]) for p, a in arrays["y_train"].items()})
        return summary
    ys = {s: np.asarray(arrays[f"y_{s}"]) for s in splits}
    task = task or infer_task(ys["train"], where)
    summary.update(task=task, **_targets(ys, task, where))
    return summary


def infer_task(y: np.ndarray, where: str = "data") -> str:
    """The task the targets say unambiguously (see the module's docstring); where they do not
    (one-hot rows, integers that look like counts), a DataError asks for data.task."""
    values = np.unique(y)
    zero_one = y.dtype == np.bool_ or bool(np.isin(values, (0, 1)).all())
    if zero_one and len(values) == 2:
        if one_hot(y):  # keras.utils.to_categorical's rows: one class per sample
            return "classification"
        return "binary" if one_column(y) else "multilabel"
    if one_column(y) and (np.issubdtype(y.dtype, np.integer) or y.dtype == np.bool_):
        classes = int(values.max()) + 1 if len(values) else 0
        if values.min() >= 0 and (classes > MAX_INFERRED_CLASSES or len(values) < classes / 2):
            raise DataError(
                f"{where}: y_train holds {len(values)} distinct integers up to {classes - 1}: state "
                "data.task: classification (labels 0..k-1) or regression (numbers)"
            )
        return "classification"
    return "regression"


def _targets(ys: dict, task: str, where: str) -> dict:
    """The task's rules for the targets; the outputs of a model's head."""
    train = ys["train"]
    given_one_hot = task == "classification" and one_hot(train)
    if given_one_hot:
        # one-hot rows are one label each: checked as labels 0..k-1, kept as rows for a
        # user's model (see snaketune.data.sources.load)
        for split, y in ys.items():
            if not one_hot(y):
                raise DataError(
                    f"{where}: y_train holds one-hot rows but y_{split} does not (each row needs "
                    "exactly one 1): give every split in the same form"
                )
        ys_columns = int(train.shape[1])
        ys = {split: y.argmax(axis=1) for split, y in ys.items()}
        train = ys["train"]
    if task in ("classification", "binary") and not one_column(train):
        raise DataError(
            f"{where}: y_train must be one label per sample for a {task} task, shape (n,) or (n, 1) "
            f"(or one-hot rows for a classification), got {train.shape}"
        )
    if task == "classification":
        for split, y in ys.items():
            if not (np.issubdtype(y.dtype, np.integer) or y.dtype == np.bool_):
                raise DataError(
                    f"{where}: y_{split} must hold integer class labels 0..k-1 for a classification, "
                    f"got dtype {y.dtype} (set data.task: regression to regress on them)"
                )
            if y.min() < 0:
                raise DataError(f"{where}: y_{split} has label {int(y.min())}; labels must be 0..classes-1")
        classes = ys_columns if given_one_hot else int(train.max()) + 1
        _varies(train, where, "a single class (label {value}); a classifier needs two or more")
        for split, y in ys.items():
            if y.max() >= classes:
                raise DataError(
                    f"{where}: y_{split} has label {int(y.max())}, but y_train's labels only go up to "
                    f"{classes - 1} (classes are 0..{classes - 1})"
                )
        return {"num_classes": classes, "outputs": classes, **({"one_hot": True} if given_one_hot else {})}
    if task in ("binary", "multilabel"):
        for split, y in ys.items():
            if not np.isin(np.unique(y), (0, 1)).all():
                raise DataError(
                    f"{where}: y_{split} must hold only 0 and 1 for a {task} task, got {np.unique(y)[:5].tolist()}..."
                )
        if task == "binary":
            _varies(train, where, "one value only ({value}); a binary task needs both 0 and 1")
        outputs = 1 if one_column(train) else int(np.prod(train.shape[1:]))
        return {"num_classes": 2 if task == "binary" else outputs, "outputs": outputs}
    if task == "regression":
        _varies(train, where, "one value only ({value}) in every row: there is nothing to learn")
        return {"num_classes": None, "outputs": 1 if one_column(train) else int(np.prod(train.shape[1:]))}
    raise DataError(f"{where}: data.task must be one of {', '.join(TASKS)}, got {task!r}")


def _varies(y: np.ndarray, where: str, problem: str) -> None:
    """A target that never changes over the training rows trains a model that "succeeds"
    at predicting a constant: refused before any job."""
    if len(y) and bool((y == y[0]).all()):
        value = y.flat[0] if y.ndim == 1 or y.shape[1:] == (1,) else y[0].tolist()
        raise DataError(
            f"{where}: y_train has {problem.format(value=value.item() if hasattr(value, 'item') else value)}"
        )
