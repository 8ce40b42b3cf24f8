"""Tabular data from a CSV file, without code: `data: {csv: path.csv, target: column}`.

Every column but the target is a feature unless `features:` lists them. Numeric columns
become float32; text columns integer codes, numbered in the sorted order of their values over
the whole file (test rows included), the mapping kept in the prepared data's info.json. A
text target is a class label, its codes the classes. Missing values are refused, naming the
columns. The test rows come from `test:` (a CSV with the same columns) or a seeded
`test_split` of the file.
"""

from __future__ import annotations

import numpy as np

from snaketune.errors import DataError


def read(path, target: str, features=None, test=None, test_split: float = 0.2, seed: int = 0) -> tuple[dict, dict]:
    """(arrays, what to record in info.json: the features, the target and the text codes)."""
    import pandas as pd

    where = f"data.csv: '{path}'"
    frames = {"train": _read(pd, path, where)}
    if test:
        frames["test"] = _read(pd, test, f"data.test: '{test}'")
    columns = list(frames["train"].columns)
    if target not in columns:
        raise DataError(f"data.target: no column '{target}' in '{path}' (its columns: {', '.join(columns)})")
    features = list(features) if features else [c for c in columns if c != target]
    unknown = [c for c in features if c not in columns]
    if unknown:
        raise DataError(f"data.features: no column {', '.join(map(repr, unknown))} in '{path}' "
                        f"(its columns: {', '.join(columns)})")
    if target in features:
        raise DataError(f"data.features: '{target}' is the target; it cannot be a feature too")
    for name, frame in frames.items():
        lacking = [c for c in [*features, target] if c not in frame.columns]
        if lacking:
            raise DataError(f"data.test: '{test}' lacks the columns {', '.join(lacking)} of '{path}'")
        empty = frame[[*features, target]].isna().sum()
        empty = empty[empty > 0]
        if len(empty):
            source = path if name == "train" else test
            raise DataError(f"{'data.csv' if name == 'train' else 'data.test'}: '{source}' has missing values in "
                            + ", ".join(f"column '{c}' ({n} rows)" for c, n in empty.items())
                            + "; fill or drop them first")
    everything = pd.concat(list(frames.values()), ignore_index=True)
    training_values = frames["train"][target].unique()
    if len(training_values) < 2:
        value = training_values[0].item() if hasattr(training_values[0], "item") else training_values[0]
        raise DataError(f"data.target: column '{target}' of '{path}' holds one value only ({value!r}); "
                        "a target must vary for a model to learn it")
    categories = {c: sorted(map(str, everything[c].unique())) for c in [*features, target]
                  if not pd.api.types.is_numeric_dtype(everything[c])}

    def encoded(frame, column):
        if column in categories:
            return pd.Categorical(frame[column].astype(str), categories=categories[column]).codes.astype(np.int64)
        return frame[column].to_numpy()

    def arrays_of(frame):
        x = np.column_stack([encoded(frame, c) for c in features]).astype(np.float32)
        y = encoded(frame, target)
        return x, (y.astype(np.float32) if np.issubdtype(y.dtype, np.floating) else y.astype(np.int64))

    if test:
        (x_train, y_train), (x_test, y_test) = arrays_of(frames["train"]), arrays_of(frames["test"])
    else:
        x, y = arrays_of(frames["train"])
        order = np.random.default_rng(seed).permutation(len(y))
        n_test = int(round(len(y) * test_split))
        if n_test < 1 or n_test >= len(y):
            raise DataError(f"data.test_split: {test_split} of {len(y)} rows leaves no training or no test rows")
        x_train, y_train, x_test, y_test = x[order[n_test:]], y[order[n_test:]], x[order[:n_test]], y[order[:n_test]]
    arrays = {"x_train": x_train, "y_train": y_train, "x_test": x_test, "y_test": y_test}
    return arrays, {"features": features, "target": target, "categories": categories}


def _read(pd, path, where):
    try:
        return pd.read_csv(path)
    except FileNotFoundError:
        raise DataError(f"{where}: file not found") from None
    except Exception as error:
        raise DataError(f"{where} is not a readable CSV file ({type(error).__name__}: {error})") from None
