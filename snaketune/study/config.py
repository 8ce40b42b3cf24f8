"""A study: its validated configuration, and what the workflow and the jobs derive from it.

Everything here runs while Snakemake parses the workflow, before any job: a bad config stops
the run with one message naming the key and what was expected, and nothing is written.
"""

from __future__ import annotations

import copy
import importlib.util
from dataclasses import dataclass
from pathlib import Path

from snaketune.core.errors import ConfigError, in_config
from snaketune.core.identity import (
    CSV_READER_CHANGES,
    FIRST_REPLICATE,
    TARGET_SCALING_TASKS,
    builtin_code_sha256,
)
from snaketune.search.objective import Objective, objective_from
from snaketune.search.space import Space
from snaketune.search.strategies import STRATEGIES
from snaketune.study.checks import builtin_reported, check_builtin_model, check_folds, check_grid, check_objective
from snaketune.study.config_files import with_overrides
from snaketune.study.data_check import checked_data, known_sha256
from snaketune.study.schema import load_schema, validate
from snaketune.trial.fits import Fit, fits, plan_name


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
        if r == FIRST_REPLICATE:
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
    def fits(self) -> list[Fit]:
        """Every fit of each configuration (training.executions_per_trial, training.folds)."""
        training = self.config["training"]
        return fits(training["executions_per_trial"], training["folds"])

    @property
    def fit_plan(self) -> str | None:
        """The name of a configuration's record over its fits; None for one fit (snaketune.trial.fits)."""
        training = self.config["training"]
        return plan_name(training["executions_per_trial"], training["folds"])

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
        model["sha256"] = known_sha256(model_file) if model_file else builtin_code_sha256(f"{model['type']}.py")
        if "type" in model:  # the built-in models' heads, losses and metrics
            model["heads_sha256"] = builtin_code_sha256("heads.py")
            if self.task in TARGET_SCALING_TASKS:
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
            "sha256": known_sha256(data["path"]) if data["path"] else None,
            "validation_split": data["validation_split"],
            "subset": data["subset"],
            "seed": data["seed"],
        }
        if data["loader"]:
            file, function = data["loader"].rsplit(":", 1)
            identity.update(
                sha256=None,
                loader=function,
                loader_sha256=known_sha256(file),
                arrays_sha256=(self.data_summary or {}).get("arrays_sha256"),
            )
            if data["inputs"]:
                identity["inputs_sha256"] = [known_sha256(f) for f in data["inputs"]]
        if data["csv"]:
            identity.update(
                sha256=known_sha256(data["csv"]),
                test_sha256=known_sha256(data["test"]) if data["test"] else None,
                target=data["target"],
                features=data["features"],
                test_split=data["test_split"],
            )
            # What the CSV reader does differently from before for some files (a dropped index
            # column, float labels taken for classes) is named, so that those studies' data and
            # trials are made anew and no other study's change.
            summary = self.data_summary or {}
            for change in CSV_READER_CHANGES:  # only the files they touch
                if summary.get(change):
                    identity[change] = True if summary[change] is True else sorted(summary[change])
        if data["task"]:
            identity["task"] = data["task"]
        return identity


def default_objective(task: str) -> str:
    """What a study optimises when its config does not say: Keras Tuner's usual val_accuracy,
    or the validation loss of a regression (which reports no accuracy)."""
    return "val_loss" if task == "regression" else "val_accuracy"


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
        model.pop("args", None)  # ONLY_WHERE_GIVEN (snaketune.core.identity)
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
        raise ConfigError(in_config(str(error))) from None
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
    check_folds(config["training"]["folds"], summary)
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
