"""A user's own data, from a function: `data.loader: path/to/file.py:load_data`.

The function takes no arguments and returns the arrays, as a dict with x_train, y_train,
x_test, y_test and optionally x_val, y_val, or as Keras' datasets return them:
((x_train, y_train), (x_test, y_test)), or three pairs (train, val, test). An x may be one
array or a dict of arrays (a model with several inputs), a y likewise.

The loader is called once before any job, in a child process (it may import TensorFlow or be
slow), to check what it returns; the result is remembered per content of its file, with the
sha256 of the arrays it returned, which is part of every trial's identity. The `data` job
calls it again and lays the arrays out; it fails if they are not the arrays checked.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import numpy as np

from snaketune.core import user_code
from snaketune.core.errors import DataError
from snaketune.data.task import OPTIONAL, REQUIRED, parts, samples


def call(spec: str) -> dict:
    """The arrays the loader returns, as a dict of x_<split>, y_<split>."""
    where = f"data.loader: '{spec}'"
    function = user_code.load(spec, DataError, where)
    try:
        returned = function()
    except Exception as error:
        raise DataError(f"{where} raised {type(error).__name__}: {error}") from error
    return _as_arrays(returned, where)


def _as_arrays(returned, where: str) -> dict:
    if (
        isinstance(returned, (tuple, list))
        and len(returned) in (2, 3)
        and all(isinstance(pair, (tuple, list)) and len(pair) == 2 for pair in returned)
    ):
        splits = ("train", "test") if len(returned) == 2 else ("train", "val", "test")
        returned = {f"{side}_{split}": pair[i] for split, pair in zip(splits, returned) for i, side in enumerate("xy")}
    if not isinstance(returned, dict):
        raise DataError(
            f"{where} returned {type(returned).__name__}; expected a dict with "
            f"{', '.join(REQUIRED)} (and x_val, y_val optionally), or ((x_train, y_train), "
            "(x_test, y_test)) as Keras' datasets return them"
        )
    unknown = sorted(set(returned) - set(REQUIRED) - set(OPTIONAL))
    if unknown:
        raise DataError(
            f"{where} returned the unknown keys {unknown}; expected {', '.join(REQUIRED)} (and x_val, y_val optionally)"
        )
    missing = [k for k in REQUIRED if k not in returned]
    if missing:
        raise DataError(
            f"{where} returned no {', '.join(missing)} (it returned {', '.join(returned)}); "
            f"expected {', '.join(REQUIRED)}"
        )
    arrays = {}
    for key, value in returned.items():
        if isinstance(value, dict):
            arrays[key] = {str(k): np.asarray(v) for k, v in value.items()}
        else:
            arrays[key] = np.asarray(value)
    return arrays


def arrays_sha256(arrays: dict) -> str:
    """The content of the arrays, their shapes, types and names included."""
    digest = hashlib.sha256()
    for key in sorted(arrays):
        for part, array in sorted(parts(arrays[key]).items()):
            array = np.ascontiguousarray(array)
            digest.update(f"{key}[{part}]:{array.dtype.str}:{array.shape}".encode())
            digest.update(array.tobytes())
    return digest.hexdigest()


def check(spec: str, task: str | None, cache_dir, inputs=()) -> dict | None:
    """Call the loader in a child process and check its arrays (snaketune.data.task.check); return
    the summary, with the arrays' sha256. Remembered per content of the loader's file and of
    the files it reads (`inputs`, as data.inputs lists them), and the task asked for. (No time
    limit: the identity of every trial waits for the arrays' sha256.)"""
    from snaketune.core.identity import file_sha256

    file = spec.rsplit(":", 1)[0]
    code = [file_sha256(Path(__file__).parent / name) for name in ("loader.py", "task.py")]
    read = [file_sha256(f) for f in inputs]
    key = hashlib.sha256(json.dumps([spec, file_sha256(file), read, task, code]).encode()).hexdigest()[:16]
    cache = Path(cache_dir) / f"{key}.json"
    if cache.is_file():
        return json.loads(cache.read_text())
    print(f"snaketune: checking data.loader '{spec}' (once per version of its file)", file=sys.stderr)
    proc = subprocess.run(
        [sys.executable, "-m", "snaketune.data.loader", spec, task or ""],
        capture_output=True,
        text=True,
        env=user_code.child_env(),
    )
    lines = proc.stdout.strip().splitlines()
    outcome = json.loads(lines[-1]) if lines and lines[-1].startswith("{") else {}
    if "error" in outcome:
        raise DataError(outcome["error"])
    if proc.returncode != 0 or "summary" not in outcome:
        tail = "\n".join(proc.stderr.strip().splitlines()[-8:])
        raise DataError(f"data.loader: '{spec}': checking it failed (exit status {proc.returncode}):\n{tail}")
    from snaketune.core.atomic import write_json

    write_json(cache, outcome["summary"])
    return outcome["summary"]


def _main() -> None:
    """The child process of `check`: argv is (spec, task); the last line of stdout the outcome."""
    from snaketune.data.task import check as check_arrays

    spec, task = sys.argv[1], sys.argv[2] or None
    try:
        arrays = call(spec)
        summary = check_arrays(arrays, f"data.loader: '{spec}'", task)
    except DataError as error:
        print(json.dumps({"error": str(error)}))
        sys.exit(2)
    summary["arrays_sha256"] = arrays_sha256(arrays)
    summary["samples"] = {k: samples(v) for k, v in arrays.items() if k.startswith("y_")}
    summary["has_val"] = "y_val" in arrays
    print(json.dumps({"summary": summary}))


if __name__ == "__main__":
    _main()
