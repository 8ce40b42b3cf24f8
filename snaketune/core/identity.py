"""Content-addressed trial identity: the folder a trial trains in is a hash of what it trains."""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path


def digest(obj, length: int = 12) -> str:
    text = json.dumps(obj, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:length]


def trial_id(values: dict, settings: dict) -> str:
    """The same hyperparameter values under the same training settings are the same trial,
    whichever strategy proposed them, so they train once."""
    return digest({"values": values, "settings": settings})


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


# -- the rules that keep the ids of trials trained by earlier versions valid ----------------
PACKAGE_DIR = Path(__file__).resolve().parents[1]


def package_file(relative: str) -> Path:
    """A file of this package by its path inside it (`search/space.py`)."""
    return PACKAGE_DIR / relative


# Rule: a built-in model's code is part of its trials' identity (models/<type>.py, heads.py,
# target_scaling.py), but where a module of the package lives is not what a trial trains.
# Those files name other modules (an import, a docstring); their identity is their text with
# each module's path written as it was before the package had layers, so that moving modules
# trains nothing anew.
MODULE_PATHS_BEFORE_LAYERS = {
    f"snaketune.{layer}.{name}": f"snaketune.{name}"
    for layer, names in {
        "core": ("errors", "atomic", "identity", "user_code", "tf_logging", "forkserver"),
        "data": ("loader", "tabular", "task"),
        "search": ("space", "kt_space", "optuna_space", "objective", "schedule", "strategies"),
        "models": ("builtin_space",),
        "trial": ("train", "final", "integrity", "outcome", "devices", "model_check"),
        "study": ("config", "config_files", "plan", "rounds"),
        "report": ("aggregate", "analysis", "summary", "plots"),
        "workflow": ("completion", "bundles", "attempts", "resources", "joblog"),
    }.items()
    for name in names
} | {"snaketune.data.sources": "snaketune.data"}
_MODULE_PATH = re.compile(
    r"\b(" + "|".join(map(re.escape, sorted(MODULE_PATHS_BEFORE_LAYERS, key=len, reverse=True))) + r")\b"
)


def builtin_code_sha256(name: str) -> str:
    """The identity of a built-in model's file `models/<name>` (see MODULE_PATHS_BEFORE_LAYERS)."""
    text = package_file(f"models/{name}").read_text(encoding="utf-8")
    text = _MODULE_PATH.sub(lambda m: MODULE_PATHS_BEFORE_LAYERS[m.group(1)], text)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
