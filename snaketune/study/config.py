"""Validate a study's configuration and derive what the workflow needs from it.

Everything here runs while Snakemake parses the workflow, before any job: a bad config stops
the run with one message naming the key and what was expected, and nothing is written.
"""

from __future__ import annotations

import copy
import hashlib
import importlib.metadata
import importlib.util
import json
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

import jsonschema
import yaml

from snaketune.core.errors import ConfigError, DataError
from snaketune.core.identity import builtin_code_sha256, file_sha256, package_file
from snaketune.data import sources as data_module
from snaketune.data.task import BUILTIN_METRICS
from snaketune.search.objective import Objective, not_reported, objective_from
from snaketune.search.space import Space
from snaketune.search.strategies import STRATEGIES
from snaketune.study.config_files import with_overrides


@dataclass
class Study:
    """A validated configuration, with the parts the workflow and the jobs share."""

    config: dict
    declared_space: Space
    # What the data set asks of a model (snaketune.data.task.check): its task, outputs, inputs; None
    # for MNIST fetched by the data job (a classification of 10 classes).
    data_summary: dict | None = None

    @property
    def name(self) -> str:
        return self.config["study"]

    @property
    def replicates(self) -> int:
        return self.config.get("replicates", 1)

    def replicate(self, r: int) -> Study:
        """Replicate r of the study: every seed (training, random, Bayesian, Hyperband) + r, so
        that replicate 0 is the study itself and its trials keep their ids."""
        if r == 0:
            return self
        config = copy.deepcopy(self.config)
        config["training"]["seed"] += r
        for strategy in config["strategies"].values():
            if "seed" in strategy:
                strategy["seed"] += r
        return Study(config=config, declared_space=self.declared_space, data_summary=self.data_summary)

    @property
    def objective(self) -> Objective:
        return objective_from(self.config["training"]["objective"] or default_objective(self.task))

    @property
    def task(self) -> str | None:
        """The data's task (snaketune.data.task), None for targets of several arrays."""
        if self.data_summary is None:
            return self.config["data"]["task"] or "classification"
        return self.data_summary["task"]

    @property
    def enabled_strategies(self) -> list[str]:
        strategies = self.config["strategies"]
        return [s for s in STRATEGIES if s in strategies and strategies[s]["enabled"]]

    @property
    def model_spec(self) -> dict:
        return self.config["model"]

    def model_inputs(self) -> list[str]:
        """The user's model file, so that editing it re-discovers the space."""
        spec = self.model_spec.get("build_model") or self.model_spec.get("hypermodel")
        return [spec.rsplit(":", 1)[0]] if spec else []

    def data_inputs(self) -> list[str]:
        """The files the data job reads: the .npz, the CSVs, or the loader's own file."""
        data = self.config["data"]
        loader = data["loader"].rsplit(":", 1)[0] if data["loader"] else None
        return [f for f in (data["path"], data["csv"], data["test"], loader, *data["inputs"]) if f]

    def training_settings(self) -> dict:
        """Everything besides the hyperparameter values that decides what a trial trains.

        It is part of each trial's identity: change any of it and trials train anew, in new
        folders, while the old ones stay cached.
        """
        model = dict(self.model_spec)
        if "build_model" in model or "hypermodel" in model:
            model_file = Path(self.model_inputs()[0])
        else:
            model_file = None
        # The model's code and the data's content are part of what a trial trains on.
        model["sha256"] = _sha256(model_file) if model_file else builtin_code_sha256(f"{model['type']}.py")
        if "type" in model:  # the built-in models' heads, losses and metrics
            model["heads_sha256"] = builtin_code_sha256("heads.py")
            if self.task == "regression":
                # A built-in model standardises a regression's target and de-standardises its
                # output (models/target_scaling.py): such trials train anew, other tasks' ids
                # stay what they were.
                model["target_scaling_sha256"] = builtin_code_sha256("target_scaling.py")
        training = self.config["training"]
        objective = self.objective
        return {
            "model": model,
            "data": self.data_identity(),
            "epochs": training["epochs"],
            "patience": training["patience"],
            "seed": training["seed"],
            "objective": {"name": objective.name, "direction": objective.direction},
        }

    def data_identity(self) -> dict:
        """What decides the data a trial trains on. A file is known by its content, wherever it
        lies; a loader by its file's content and the arrays it returned; None is MNIST, fetched
        and checked. An .npz study's identity is what it was before loaders and CSVs."""
        data = self.config["data"]
        identity = {
            "sha256": _sha256(data["path"]) if data["path"] else None,
            "validation_split": data["validation_split"],
            "subset": data["subset"],
            "seed": data["seed"],
        }
        if data["loader"]:
            file, function = data["loader"].rsplit(":", 1)
            identity.update(
                sha256=None,
                loader=function,
                loader_sha256=_sha256(file),
                arrays_sha256=(self.data_summary or {}).get("arrays_sha256"),
            )
            if data["inputs"]:
                identity["inputs_sha256"] = [_sha256(f) for f in data["inputs"]]
        if data["csv"]:
            identity.update(
                sha256=_sha256(data["csv"]),
                test_sha256=_sha256(data["test"]) if data["test"] else None,
                target=data["target"],
                features=data["features"],
                test_split=data["test_split"],
            )
            # What the CSV reader does differently from before for some files (a dropped index
            # column, float labels taken for classes) is named, so that those studies' data and
            # trials are made anew and no other study's change.
            summary = self.data_summary or {}
            if summary.get("dropped_columns"):
                identity["dropped_columns"] = sorted(summary["dropped_columns"])
            if summary.get("labels_from_floats"):
                identity["labels_from_floats"] = True
        if data["task"]:
            identity["task"] = data["task"]
        return identity


def _sha256(path) -> str:
    """A file's sha256, as the data check's cache recorded it for this version of the file
    (see checked_data), else read."""
    try:
        known = _KNOWN_SHA256.get(_version(path))
    except OSError:
        known = None
    return known or file_sha256(path)


def default_objective(task: str) -> str:
    """What a study optimises when its config does not say: Keras Tuner's usual val_accuracy,
    or the validation loss of a regression (which reports no accuracy)."""
    return "val_loss" if task == "regression" else "val_accuracy"


def load_schema(path) -> dict:
    return yaml.safe_load(Path(path).read_text())


# YAML 1.1 (PyYAML, and so Snakemake) reads 1e-3 as a string; YAML 1.2 and every user read it
# as a number.
_EXPONENT_NUMBER = re.compile(r"^[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+$")


def _numbers_as_numbers(node):
    if isinstance(node, dict):
        # the study's name is a name, whatever it looks like
        return {k: v if k == "study" else _numbers_as_numbers(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_numbers_as_numbers(v) for v in node]
    if isinstance(node, str) and _EXPONENT_NUMBER.match(node):
        return float(node)
    return node


def validate(config: dict, schema: dict) -> dict:
    """Check `config` against the JSON schema; return a copy with the schema's defaults filled in."""
    config = _numbers_as_numbers(copy.deepcopy(config))
    _fill_defaults(config, schema)
    error = jsonschema.exceptions.best_match(_Validator(schema).iter_errors(config))
    if error is not None:
        raise ConfigError(_describe(error))
    return config


# JSON Schema counts 10.0 as an integer; a budget or a seed of 10.0 would break range().
_Validator = jsonschema.validators.extend(
    jsonschema.Draft7Validator,
    type_checker=jsonschema.Draft7Validator.TYPE_CHECKER.redefine(
        "integer", lambda _, value: isinstance(value, int) and not isinstance(value, bool)
    ),
)


def _fill_defaults(instance, schema) -> None:
    if not isinstance(instance, dict):
        return
    for key, sub in schema.get("properties", {}).items():
        if key not in instance and "default" in sub:
            instance[key] = copy.deepcopy(sub["default"])
        if key in instance:
            _fill_defaults(instance[key], sub)


def _describe(error) -> str:
    key = ".".join(str(p) for p in error.absolute_path) or "<top level>"
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        allowed = sorted(error.schema.get("properties", {}))
        unknown = sorted(set(error.instance) - set(allowed))
        where = f"{key}." if error.absolute_path else ""
        names = ", ".join(f"'{where}{u}'" for u in unknown)
        return f"config: unknown key {names}; expected one of: {', '.join(allowed)}"
    if error.validator == "required":
        return f"config: {key}: {error.message}"
    if error.validator == "oneOf" and error.absolute_path and error.absolute_path[-1] == "objective":
        return (
            f"config: {key}: expected the name of a metric the model reports (val_accuracy, val_loss, "
            f"val_auc, val_mae, ...) or {{name: ..., direction: min|max}}, got {error.instance!r}"
        )
    if error.validator == "enum":
        return f"config: {key}: expected one of {', '.join(map(str, error.validator_value))}, got {error.instance!r}"
    if error.validator == "type":
        return f"config: {key}: expected {error.validator_value}, got {error.instance!r}"
    return f"config: {key}: {error.message}"


def load_study(config: dict, schema_path, overrides=None, cache_dir=None) -> Study:
    """Validate everything that can be checked without TensorFlow and return the study.

    `overrides`: the `--config` values, which Snakemake merged into `config` as text.
    `cache_dir`: where the data's check is remembered per version of its files (see
    checked_data), a loader's too (it runs the loader in a child process); without one, the
    data is checked each time."""
    schema = load_schema(schema_path)
    if overrides:
        config = with_overrides(config, overrides, schema)
    config = validate(config, schema)
    model = config["model"]
    kinds = [k for k in ("type", "build_model", "hypermodel") if k in model]
    if len(kinds) > 1:
        raise ConfigError(f"config: model.{kinds[0]} and model.{kinds[1]} exclude each other; set one")
    if not kinds:
        model["type"] = "mlp"
    if model.get("args") and "hypermodel" not in model:
        raise ConfigError("config: model.args: only for model.hypermodel (its constructor's keyword arguments)")
    if not model.get("args"):
        model.pop("args", None)  # a build_model's or built-in model's identity stays what it was
    for key in ("build_model", "hypermodel"):
        if key in model:
            file, _ = model[key].rsplit(":", 1)
            if not Path(file).is_file():
                raise ConfigError(
                    f"config: model.{key}: file '{file}' not found (expected path/to/file.py:"
                    f"{'function' if key == 'build_model' else 'ClassName'}, relative to the working directory "
                    f"{Path.cwd()})"
                )
    if "hypermodel" in model and "batch_size" in (config["space"] or {}):
        raise ConfigError(
            "config: space.batch_size: a HyperModel's fit sets its batch size itself, as with Keras "
            "Tuner: declare hp.Choice('batch_size', ...) in its fit instead"
        )
    resources = config["resources"]
    if resources["trials_per_gpu"] > 1 and resources["gpu"] != 1:
        raise ConfigError(
            f"config: resources.trials_per_gpu: {resources['trials_per_gpu']} needs resources.gpu: 1 "
            f"(jobs share a device only when each asks for one; gpu is {resources['gpu']})"
        )
    summary = checked_data(config["data"], cache_dir)
    try:
        declared = Space.from_config(config["space"])
    except ConfigError as error:
        raise ConfigError(_in_config(str(error))) from None
    study = Study(config=config, declared_space=declared, data_summary=summary)
    try:
        _ = study.objective  # its name and direction, or why they cannot be known
    except ValueError as error:
        raise ConfigError(
            f"config: training.objective: {error}; give it as {{name: "
            f"{config['training']['objective']}, direction: min}} or max"
        ) from None
    if "type" in config["model"]:
        check_builtin_model(config["model"]["type"], summary)
        check_objective(study.objective, builtin_reported(study.task))
    if not study.enabled_strategies:
        raise ConfigError(f"config: strategies: enable at least one of {', '.join(STRATEGIES)}")
    if "grid" in study.enabled_strategies:
        check_grid(config["strategies"]["grid"]["values"], declared, complete=False)
    for name in study.enabled_strategies:
        for module, why in STRATEGIES[name].needs:
            if importlib.util.find_spec(module) is None:
                raise ConfigError(
                    f"config: strategies.{name}: {why}; install it (pip install {module}) "
                    f"or set strategies.{name}.enabled: false"
                )
    return study


def check_builtin_model(kind: str, summary: dict | None) -> None:
    """A built-in model takes what the data set gives: one target array; the cnn one array of
    images."""
    if summary is None:
        return  # MNIST
    if summary["task"] is None:
        raise ConfigError(
            f"config: model.type: the built-in {kind} predicts one target array; this data's y is a "
            f"dict of {len(summary['outputs'])} ({', '.join(summary['outputs'])}): use a "
            "model.build_model or model.hypermodel of your own"
        )
    inputs = summary["inputs"]
    if kind == "cnn" and (list(inputs) != [""] or len(inputs[""]) != 3):
        raise ConfigError(
            f"config: model.type: the built-in cnn takes one array of images (n, height, width, "
            f"channels); this data's samples are {inputs if list(inputs) != [''] else inputs['']} "
            "(an .npz's images (n, height, width) get their channel axis; a loader's must have "
            "it): use type: mlp, or a model of your own"
        )
    low, high = summary.get("x_range", {}).get("", (0.0, 1.0))
    if kind == "cnn" and (low < -1 - 1e-6 or high > 1 + 1e-6):
        # the cnn has no normalisation layer: pixels in 0..255 would train it badly, silently
        raise ConfigError(
            f"config: model.type: the built-in cnn takes images scaled to [0, 1] (as an .npz's "
            f"integer pixels are); this data's x_train runs from {low:g} to {high:g}: scale it "
            "(x / 255 for 8-bit pixels) in your data, or use type: mlp, which normalises its inputs"
        )


def builtin_reported(task: str | None) -> list[str]:
    """What a built-in model reports per epoch for a task, as Keras names it."""
    metrics = ["loss", *BUILTIN_METRICS.get(task, [])]
    return metrics + [f"val_{m}" for m in metrics]


def check_objective(objective: Objective, reported: list[str]) -> None:
    if objective.name not in reported:
        raise ConfigError(not_reported(objective.name, reported))


def _in_config(message: str) -> str:
    return message if message.startswith("config: ") else f"config: {message}"


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
                data["validation_split"],
                data["subset"],
                data["task"],
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
        raise ConfigError(_in_config(str(error))) from None
    if data["task"] not in (None, "classification"):
        raise ConfigError(f"config: data.task: MNIST is a classification, not {data['task']}")
    return None


# sha256 of data files by _version, from the data check's cache (see checked_data)
_KNOWN_SHA256: dict[tuple, str] = {}
# What decides a check's result besides the data and its settings: the checking code and the
# libraries that read the files.
_CHECK_CODE = ("study/config.py", "data/sources.py", "data/task.py", "data/tabular.py", "data/loader.py")
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
    hashes = [_sha256(f) for f in files]
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
        data["csv"], data["target"], data["features"], data["test"], data["test_split"], data["seed"], data["task"]
    )
    summary = data_module.check(arrays, f"config: data.csv: '{data['csv']}'", data["task"])
    summary.update({k: described[k] for k in ("dropped_columns", "labels_from_floats") if k in described})
    data_module.split_sizes(len(arrays["y_train"]), data["validation_split"], data["subset"])
    return summary


def check_grid(grid: dict, space: Space, complete: bool) -> None:
    """Every grid value must be a value of its hyperparameter.

    With `complete=False` only hyperparameters the YAML declares are checked: those a
    build_model(hp) defines are known once the space has been discovered (`complete=True`).
    """
    for name, values in grid.items():
        key = f"strategies.grid.values.{name}"
        if name not in space:
            if complete:
                raise ConfigError(
                    f"config: {key}: no hyperparameter '{name}' in the search space ({', '.join(space.names)})"
                )
            continue
        hp = space[name]
        if len(set(map(repr, values))) != len(values):
            raise ConfigError(f"config: {key}: values must be distinct, got {values}")
        for value in values:
            if not hp.contains(value):
                raise ConfigError(f"config: {key}: {value!r} is not a value of space.{name} ({_range_text(hp)})")


def _range_text(hp) -> str:
    if hp.type == "choice":
        return f"one of {list(hp.values)}"
    if hp.type in ("int", "float"):
        step = f" step {hp.step}" if hp.step is not None else ""
        return f"{hp.type} from {hp.min} to {hp.max}{step}, {hp.sampling}"
    return hp.type


def check_model(study: Study, cache_dir) -> None:
    """A user's build_model(hp) or HyperModel, discovered and tried before any job runs (see
    model_check.check_user_model), or a built-in model's space, and the grid checked against the
    hyperparameters the model declares. Imports no TensorFlow here; a user's model's success is
    remembered in `cache_dir` (outside results/)."""
    from snaketune import models
    from snaketune.models import builtin_space
    from snaketune.trial import model_check

    if not models.user_model(study.model_spec):
        # a built-in model's space is known here, without TensorFlow
        space = builtin_space.discover(study.model_spec["type"], Space.from_config(study.config["space"]))
        if space is not None and "grid" in study.enabled_strategies:
            check_grid(study.config["strategies"]["grid"]["values"], space, complete=True)
        return
    objective = study.objective
    checked = model_check.check_user_model(
        study.model_spec,
        study.config["space"],
        study.config["data"],
        study.data_summary,
        {"name": objective.name, "direction": objective.direction},
        cache_dir,
    )
    if checked is not None and "grid" in study.enabled_strategies:
        space = Space.from_json(json.dumps(checked["space"]))
        check_grid(study.config["strategies"]["grid"]["values"], space, complete=True)
