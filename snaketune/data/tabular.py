"""Tabular data from a CSV file, without code: `data: {csv: path.csv, target: column}`.

Every column but the target is a feature unless `features:` lists them. The delimiter is
detected (comma, semicolon, tab or |). Numeric columns become float32; text columns integer
codes, numbered in the sorted order of their values over the whole file (test rows included),
the mapping kept in the prepared data's info.json. A text target is a class label, its codes
the classes; a target of whole numbers written as floats (0.0, 1.0, 2.0) is read as the
integers it holds. The test rows come from `test:` (a CSV with the same columns) or a seeded
`test_split` of the file.

A column that would be read wrong is refused before any job, naming it and what to do, for
pandas would read each of these as text and the codes would train a model without a word:

- missing values;
- numbers with a few exceptions (a stray `?`, a typo): the rows and the values are named;
- numbers written with separators (`"1,037"`, a decimal comma) and dates;
- a text target for a regression;
- a column without a name, other than the row index `DataFrame.to_csv()` writes first: that
  one holds the rows' places in the file, nothing about them, and would let a model learn
  the file's order; it is dropped, and info.json says so (`dropped_columns`).

Rows are named by their line in the file, the header being line 1.
"""

from __future__ import annotations

import csv

import numpy as np

from snaketune.core.errors import DataError
from snaketune.data.task import MAX_INFERRED_CLASSES

DELIMITERS = ",;\t|"
# How much of a file the delimiter is guessed from.
SNIFF_BYTES = 64 * 1024
# A column is taken for numbers with exceptions when at least this share of its cells are numbers.
MOSTLY = 0.5
# How many of a column's offending cells a message shows.
SHOWN = 5


# Numbers written with separators pandas does not read as numbers: thousands separators
# (1,037 / 1'037 / 1 037) before an optional decimal point, or a decimal comma (1,5 / 1.037,5).
THOUSANDS_COMMA = r"[+-]?\d{1,3}(?:,\d{3})+(?:\.\d+)?"
SEPARATED = (
    r"[+-]?\d{1,3}(?:[,'\u00a0 ]\d{3})+(?:\.\d+)?"
    r"|[+-]?\d{1,3}(?:[.'\u00a0 ]\d{3})*,\d+|[+-]?\d+,\d+"
)


def read(
    path, target: str, *, features=None, test=None, test_split: float = 0.2, seed: int = 0, task: str | None = None
) -> tuple[dict, dict]:
    """(arrays, what to record in info.json: the features, the target, the text codes, the
    delimiter and any column dropped). `task` is data.task where the config states it."""
    import pandas as pd

    where = f"data.csv: '{path}'"
    sources = {"train": (path, where)}
    if test:
        sources["test"] = (test, f"data.test: '{test}'")
    frames, delimiters = {}, {}
    for split, (source, said) in sources.items():
        frames[split], delimiters[split] = _read(pd, source, said)
    dropped = {}
    for split, frame in frames.items():
        first = frame.columns[0]
        if (
            _unnamed(frame, first)
            and first != target
            and not (features and first in features)
            and _row_labels(pd, frame[first])
        ):
            frames[split] = frame.drop(columns=first)
            dropped[first] = (
                "no name in the header, and distinct whole numbers: the row index "
                "DataFrame.to_csv() writes (save with index=False to leave it out)"
            )
    columns = list(frames["train"].columns)
    if target not in columns:
        raise DataError(f"data.target: no column '{target}' in '{path}' (its columns: {', '.join(columns)})")
    unnamed = [c for c in columns if c != target and _unnamed(frames["train"], c)]
    if unnamed and not features:
        first = unnamed[0]
        raise DataError(
            f"{where}: column {int(first.split(': ')[1]) + 1} has no name in the header (pandas "
            f"calls it '{first}'), so what it holds is unknown: name it in the header, or list the "
            "columns to learn from in data.features"
        )
    features = list(features) if features else [c for c in columns if c != target]
    unknown = [c for c in features if c not in columns]
    if unknown:
        raise DataError(
            f"data.features: no column {', '.join(map(repr, unknown))} in '{path}' (its columns: {', '.join(columns)})"
        )
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
            raise DataError(
                f"{'data.csv' if name == 'train' else 'data.test'}: '{source}' has missing values in "
                + ", ".join(f"column '{c}' ({n} rows)" for c, n in empty.items())
                + "; fill or drop them first"
            )
        for column in [*features, target]:
            frame[column] = _as_read(
                pd, frame[column], column, where=sources[name][1], path=sources[name][0], delimiter=delimiters[name]
            )
    everything = pd.concat(list(frames.values()), ignore_index=True)
    labels_from_floats = False
    if not pd.api.types.is_numeric_dtype(everything[target]):
        if task not in (None, "classification", "binary"):
            shown = ", ".join(map(repr, sorted(map(str, everything[target].unique()))[:SHOWN]))
            raise DataError(
                f"data.task: {task}, but the target column '{target}' of '{path}' holds text ({shown}"
                f"{', ...' if everything[target].nunique() > SHOWN else ''}): text is class labels, "
                "a classification; a regression needs numbers"
            )
    elif _float_labels(pd, frames["train"][target], everything[target], task):
        labels_from_floats = True
        for frame in (*frames.values(), everything):
            frame[target] = frame[target].astype(np.int64)
    training_values = frames["train"][target].unique()
    if len(training_values) < 2:
        value = training_values[0].item() if hasattr(training_values[0], "item") else training_values[0]
        raise DataError(
            f"data.target: column '{target}' of '{path}' holds one value only ({value!r}); "
            "a target must vary for a model to learn it"
        )
    categories = {
        c: sorted(map(str, everything[c].unique()))
        for c in [*features, target]
        if not pd.api.types.is_numeric_dtype(everything[c])
    }

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
    described = {"features": features, "target": target, "categories": categories, "delimiter": delimiters["train"]}
    # Both change what an earlier snaketune read from the same file: named, so that they are
    # part of the data's identity (snaketune.study.config.Study.data_identity).
    if dropped:
        described["dropped_columns"] = dropped
    if labels_from_floats:
        described["labels_from_floats"] = True
    return arrays, described


def _read(pd, path, where):
    """The file's rows, read with the delimiter its first lines use; (frame, delimiter)."""
    try:
        with open(path, "rb") as fh:
            sample = fh.read(SNIFF_BYTES).decode("utf-8", errors="replace")
    except FileNotFoundError:
        raise DataError(f"{where}: file not found") from None
    except OSError as error:
        raise DataError(f"{where} is not a readable CSV file ({type(error).__name__}: {error})") from None
    if len(sample) == SNIFF_BYTES and "\n" in sample:
        sample = sample[: sample.rindex("\n")]  # whole lines only: a cut one would look inconsistent
    try:
        delimiter = csv.Sniffer().sniff(sample, delimiters=DELIMITERS).delimiter
    except csv.Error:  # one column, or no delimiter used alike on every line: said below
        delimiter = ","
    try:
        frame = pd.read_csv(path, sep=delimiter)
    except Exception as error:
        raise DataError(f"{where} is not a readable CSV file ({type(error).__name__}: {error})") from None
    if len(frame.columns) < 2:
        header = sample.splitlines()[0] if sample.strip() else ""
        raise DataError(
            f"{where}: read as one column, its header {header[:80]!r}: no delimiter among comma, "
            "semicolon, tab and | separates its columns alike on every line; a CSV needs a column to "
            "predict and one or more to learn from"
        )
    return frame, delimiter


def _float_labels(pd, training, values, task) -> bool:
    """Whether a float target is class labels written with a point (0.0, 1.0, 2.0, as pandas
    writes a label column that once held a missing value): where data.task says a
    classification, any whole numbers; where it says nothing, only the labels 0..k-1, every
    one of them in the training rows. Other whole numbers (a count, a score such as
    25.0..346.0) stay numbers, a regression, as they did: taken for labels, they would be
    classes silently."""
    if task == "regression" or not pd.api.types.is_float_dtype(values) or not bool((values % 1 == 0).all()):
        return False
    if task in ("classification", "binary"):
        return True
    labels = np.unique(training.to_numpy())
    return (
        len(labels) <= MAX_INFERRED_CLASSES
        and bool((labels == np.arange(len(labels))).all())
        and values.max() < len(labels)
    )


def _lines(pd, path, delimiter) -> np.ndarray:
    """The line in the file of each row read (the header's is 1), for a message: read again
    with the blank lines pandas skipped kept (as rows of nothing but missing values), not
    read so every time, for its column types would change (ints to floats)."""
    rows = pd.read_csv(path, sep=delimiter, dtype=str, skip_blank_lines=False)
    return np.flatnonzero(rows.notna().any(axis=1).to_numpy()) + 2


def _unnamed(frame, column) -> bool:
    """The header cell was empty: pandas names the column after its place."""
    return str(column) == f"Unnamed: {list(frame.columns).index(column)}"


def _row_labels(pd, values) -> bool:
    """Distinct whole numbers: row numbers, as an index written to the file holds them."""
    return (
        pd.api.types.is_numeric_dtype(values)
        and not values.isna().any()
        and bool((values % 1 == 0).all())
        and values.is_unique
    )


def _as_read(pd, values, column, *, where, path, delimiter):
    """A column as numbers or text, or a DataError where pandas' reading would be wrong."""
    from pandas.tseries.api import guess_datetime_format

    if pd.api.types.is_numeric_dtype(values):
        return values
    text = values.astype(str).str.strip()
    numbers = pd.to_numeric(text, errors="coerce")
    odd = text[numbers.isna()]
    if odd.empty:  # numbers after all (padded with spaces, say)
        return numbers

    def cells(selected):
        lines = _lines(pd, path, delimiter)
        shown = ", ".join(f"{v!r} (line {lines[i]})" for i, v in selected.head(SHOWN).items())
        return shown + (f" and {len(selected) - SHOWN} more" if len(selected) > SHOWN else "")

    sep = "" if delimiter == "," else f", sep={delimiter!r}"
    if odd.str.fullmatch(SEPARATED).all():
        if odd.str.fullmatch(THOUSANDS_COMMA).all():
            fix = f"pandas.read_csv('{path}'{sep}, thousands=',').to_csv('{path}', index=False)"
        else:
            fix = f"pandas.read_csv('{path}'{sep}, decimal=',', thousands='.').to_csv('{path}', index=False)"
        raise DataError(
            f"{where}: column '{column}' holds numbers written with separators, {cells(odd)}, which "
            "would be read as text (is 1,037 a thousand and 37, or 1.037?): write them as plain numbers, "
            f"e.g. {fix}"
        )
    # each distinct value guessed once, and none where the first is no date (a text column)
    if guess_datetime_format(odd.iloc[0]) and odd.drop_duplicates().map(guess_datetime_format).notna().all():
        raise DataError(
            f"{where}: column '{column}' holds dates, {cells(odd)}, which a model cannot take as they "
            "are (they would be read as text codes): turn them into numbers in the file (days since a "
            "date, the year, month or weekday in columns of their own), or leave the column out by "
            "listing the others in data.features"
        )
    if len(odd) <= len(text) * (1 - MOSTLY):
        raise DataError(
            f"{where}: column '{column}' holds numbers but for {len(odd)} of its {len(text)} values, "
            f"{cells(odd)}, for which the whole column would be read as text codes: correct those values, "
            "or drop or fill their rows where they stand for a missing value"
        )
    return values
