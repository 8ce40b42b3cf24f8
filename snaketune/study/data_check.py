"""The study's data, checked before any job as the `data` job would check it, and remembered per
version of its files so that every job parsing the workflow does not read it again."""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
import tempfile
from pathlib import Path

from snaketune.core.errors import ConfigError, DataError, in_config
from snaketune.core.identity import file_sha256, package_file
from snaketune.data import sources as data_module


def check_data(data: dict, cache_dir=None) -> dict | None:
    """The data set, checked as the `data` job would check it, before any job runs; return its
    summary (snaketune.data.task.check), None for MNIST fetched by the data job.

    A failed `data` job would take the study's prepared arrays with it (Snakemake removes a
    failed job's outputs), so bad data must stop the run here. Of an .npz only the integer
    image arrays' .npy headers are read (the rest whole); a CSV is read; a loader runs in a
    child process once per content of its file (`cache_dir`). The workflow checks through
    checked_data, once per version of the files.
    `data.sha256` is compared with the hash the trial ids take of the file anyway.
    """
    sources = [key for key in ("path", "loader", "csv") if data[key]]
    if len(sources) > 1:
        raise ConfigError(f"config: data.{sources[0]} and data.{sources[1]} exclude each other; set one")
    if data["sha256"] and not (data["path"] or data["csv"]):
        raise ConfigError(
            "config: data.sha256: given without data.path or data.csv; it checks the file they "
            "name (MNIST, when fetched, is checked against its own sha256 sums)"
        )
    csv_only = [key for key in ("target", "features", "test") if data[key]]
    if csv_only and not data["csv"]:
        raise ConfigError(f"config: data.{csv_only[0]}: only for data.csv")
    if data["inputs"] and not data["loader"]:
        raise ConfigError("config: data.inputs: only for data.loader (the files it reads)")
    for file in data["inputs"]:
        _exists(file, "data.inputs", "a file the loader reads")
    try:
        if data["path"]:
            _exists(
                data["path"],
                "data.path",
                "an .npz with x_train, y_train, x_test, y_test",
                "; set data.path to null to download MNIST",
            )
            if data["sha256"]:
                data_module.check_sha256(data["path"], data["sha256"], "config: data.sha256")
            return data_module.check_file(
                data["path"],
                f"config: data.path: '{data['path']}'",
                validation_split=data["validation_split"],
                subset=data["subset"],
                task=data["task"],
            )
        if data["csv"]:
            return _check_csv(data)
        if data["loader"]:
            from snaketune.data import loader

            _exists(data["loader"].rsplit(":", 1)[0], "data.loader", "path/to/file.py:function")
            if cache_dir is None:
                with tempfile.TemporaryDirectory() as fresh:
                    summary = loader.check(data["loader"], data["task"], fresh, data["inputs"])
            else:
                summary = loader.check(data["loader"], data["task"], Path(cache_dir) / "loader", data["inputs"])
            if not summary["has_val"]:
                data_module.split_sizes(summary["samples"]["y_train"], data["validation_split"], data["subset"])
            return summary
    except DataError as error:
        raise ConfigError(in_config(str(error))) from None
    if data["task"] not in (None, "classification"):
        raise ConfigError(f"config: data.task: MNIST is a classification, not {data['task']}")
    return None


# sha256 of data files by _version, from the data check's cache (see checked_data)
_KNOWN_SHA256: dict[tuple, str] = {}
# What decides a check's result besides the data and its settings: the checking code and the
# libraries that read the files.
_CHECK_CODE = ("study/data_check.py", "data/sources.py", "data/task.py", "data/tabular.py", "data/loader.py")
_CHECK_LIBRARIES = ("numpy", "pandas")


def checked_data(data: dict, cache_dir=None) -> dict | None:
    """check_data, remembered in `cache_dir` per version of the data's files (and of the data
    settings, the checking code and numpy's and pandas's versions), with each file's sha256.

    The workflow is parsed by every job too (on Slurm, each in its own process): without
    this, each job would read the whole table or .npz, and hash it for the trial ids, before
    it starts. A file's version is its path, size, mtime, ctime and inode, read by stat: a
    file written again, even with its mtime set back (cp -p, rsync -t), gets a new ctime and is
    checked again. A version not in the cache (a first run, a changed file) is checked and
    hashed as before, by whichever process meets it first."""
    loader = data["loader"].rsplit(":", 1)[0] if data["loader"] else None
    files = [f for f in (data["path"], data["csv"], data["test"], loader, *data["inputs"]) if f]
    if cache_dir is None or not files:  # no files: MNIST, fetched and checked by the data job
        return check_data(data, cache_dir)
    try:
        versions = [_version(f) for f in files]
    except OSError:
        return check_data(data, cache_dir)  # which names the missing file
    key = hashlib.sha256(
        json.dumps([data, versions, _check_version()], sort_keys=True, default=str).encode()
    ).hexdigest()[:16]
    cache = Path(cache_dir) / "data" / f"{key}.json"
    try:
        record = json.loads(cache.read_text())
        for version, sha256 in record["sha256"]:
            _KNOWN_SHA256[tuple(version)] = sha256
        return record["summary"]
    except (OSError, ValueError, KeyError, TypeError):
        pass
    # the summary as the cache gives it back (JSON's numbers, lists), so that every run sees
    # the same values (the build_model check's key digests them)
    summary = json.loads(json.dumps(check_data(data, cache_dir), default=_plain))
    hashes = [known_sha256(f) for f in files]
    if [_version(f) for f in files] == versions:  # not changed while it was read
        from snaketune.core.atomic import write_json

        write_json(cache, {"summary": summary, "sha256": [[list(v), h] for v, h in zip(versions, hashes)]})
        _KNOWN_SHA256.update(zip(versions, hashes))
    return summary


def _version(path) -> tuple:
    stat = os.stat(path)
    return (os.path.abspath(path), stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns, stat.st_ino)


def _check_version() -> list:
    versions = []
    for library in _CHECK_LIBRARIES:
        try:
            versions.append(importlib.metadata.version(library))
        except importlib.metadata.PackageNotFoundError:
            versions.append(None)
    return [file_sha256(package_file(name)) for name in _CHECK_CODE] + versions


def _plain(value):
    return value.item() if hasattr(value, "item") else str(value)


def _exists(path, key: str, expected: str, hint: str = "") -> None:
    if not Path(path).is_file():
        raise ConfigError(
            f"config: {key}: file '{path}' not found (expected {expected}; relative to the "
            f"working directory {Path.cwd()}){hint}"
        )


def _check_csv(data: dict) -> dict:
    from snaketune.data import tabular

    _exists(data["csv"], "data.csv", "a CSV file with a header row")
    if data["test"]:
        _exists(data["test"], "data.test", "a CSV file with the columns of data.csv")
    if not data["target"]:
        raise ConfigError("config: data.target: the CSV's column to predict is required with data.csv")
    if data["sha256"]:
        data_module.check_sha256(data["csv"], data["sha256"], "config: data.sha256")
    arrays, described = tabular.read(
        data["csv"],
        data["target"],
        features=data["features"],
        test=data["test"],
        test_split=data["test_split"],
        seed=data["seed"],
        task=data["task"],
    )
    summary = data_module.check(arrays, f"config: data.csv: '{data['csv']}'", data["task"])
    summary.update({k: described[k] for k in ("dropped_columns", "labels_from_floats") if k in described})
    data_module.split_sizes(len(arrays["y_train"]), data["validation_split"], data["subset"])
    return summary


def known_sha256(path) -> str:
    """A file's sha256, as the data check's cache recorded it for this version of the file
    (see checked_data), else read."""
    try:
        known = _KNOWN_SHA256.get(_version(path))
    except OSError:
        known = None
    return known or file_sha256(path)
