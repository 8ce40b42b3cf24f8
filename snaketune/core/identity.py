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
# A trial's id digests what decides its result (its values and the training settings:
# snaketune.study.config.Study.training_settings), and the keys of the plan digest what
# decides each derived file (snaketune.study.plan). When snaketune learns something new, the
# rules below add it to an id or a key only where it applies, so that the studies it does not
# concern keep their ids, and their trained trials.

# A trial's schedule (snaketune.search.schedule) is digested among its values under Keras
# Tuner's names, as it was before the schedule had a field of its own.
SCHEDULE_NAMES = {"epochs": "tuner/epochs", "initial_epoch": "tuner/initial_epoch", "parent": "tuner/trial_id"}
# Settings digested only where a study gives them: a HyperModel's constructor arguments
# (model.args) and the data's task (data.task) where the config names it.
ONLY_WHERE_GIVEN = ("model.args", "data.task")
# The tasks whose built-in models standardise their target (models/target_scaling.py), whose
# trials digest that file too.
TARGET_SCALING_TASKS = ("regression",)
# What the CSV reader does differently from its first version, for some files only (an index
# column dropped, float labels taken for classes): digested for those files only.
CSV_READER_CHANGES = ("dropped_columns", "labels_from_floats")
# The layout of the prepared data (snaketune.data.prepared), in the data key; one-hot targets,
# kept as rows since layout 3 wrote them as labels, add ONE_HOT_TARGETS to it.
DATA_LAYOUT = 3
ONE_HOT_TARGETS = {"targets": "as given"}
# How a user's model's space is discovered (snaketune.search.kt_space.discover), in the key of
# the space of a build_model or HyperModel: 2 finds what only some values of an Int reach.
DISCOVERY = 2
# Replicate r of a study shifts every seed by r: replicate 0 is the study itself.
FIRST_REPLICATE = 0
# Several fits per configuration (snaketune.trial.fits) are not in a trial's id: the first
# execution of a study without folds is its single fit, with the trial's seed, in its folder;
# the plan's keys digest the fits (FITS_KEY) only where there are several.
FITS_KEY = "fits"

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
