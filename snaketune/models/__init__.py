"""Models: the built-in hypermodels, a user's own Keras Tuner build_model(hp) or HyperModel,
all as Keras Tuner HyperModels (build(hp), fit(hp, model, *args, **kwargs)). A user's model
is discovered and tried before any job by snaketune.trial.model_check."""

from __future__ import annotations

import functools
import importlib

from snaketune.core import user_code
from snaketune.core.errors import ConfigError

# The data a built-in model is built for while its hyperparameters are discovered, before any
# data is at hand: MNIST's.
NOMINAL_DATA = {"inputs": {"": [28, 28, 1]}, "task": "classification", "outputs": 10}
USER_MODELS = ("build_model", "hypermodel")


def user_model(model_spec: dict) -> tuple[str, str] | None:
    """(its key, path/to/file.py:name) of a user's model, or None for a built-in one."""
    for key in USER_MODELS:
        if model_spec.get(key):
            return key, model_spec[key]
    return None


def builtin(model_spec: dict) -> bool:
    """One of snaketune's own models (they take class labels, never one-hot rows)."""
    return user_model(model_spec) is None


def resolve(model_spec: dict, info: dict | None = None, data_dir=None, train: tuple | None = None):
    """The configured model as a Keras Tuner HyperModel. A built-in one is built for the
    prepared data `info` describes (its inputs, task and outputs, and the features'
    statistics in `data_dir` for its Normalization layer, a regression target's for
    snaketune.models.target_scaling; or those of the training rows `train`, (x, y), where a
    fit trains on other rows than the prepared split: a fold's); a build_model(hp) is wrapped
    as Keras Tuner wraps it; a HyperModel is made with `model.args`."""
    from keras_tuner.src.engine.hypermodel import DefaultHyperModel, HyperModel

    if model_spec.get("hypermodel"):
        cls = load_user_object(model_spec["hypermodel"], "hypermodel")
        if not (isinstance(cls, type) and issubclass(cls, HyperModel)):
            raise ConfigError(
                f"config: model.hypermodel: '{model_spec['hypermodel']}' is not a subclass of keras_tuner.HyperModel"
            )
        try:
            return cls(**(model_spec.get("args") or {}))
        except Exception as error:
            raise ConfigError(
                f"config: model.args: '{model_spec['hypermodel']}'(**args) raised {type(error).__name__}: {error}"
            ) from error
    if model_spec.get("build_model"):
        return DefaultHyperModel(load_user_object(model_spec["build_model"], "build_model"))
    from snaketune.data.prepared import feature_stats, stats_of, target_stats

    info = info or NOMINAL_DATA
    if train is not None:
        stats, target = stats_of(train)
    else:
        stats = {name: feature_stats(data_dir, name) for name in info["inputs"]} if data_dir else None
        target = target_stats(data_dir) if data_dir and info["task"] == "regression" else None
    module = importlib.import_module(f"snaketune.models.{model_spec['type']}")
    build = functools.partial(
        module.build_model,
        inputs={k: tuple(v) for k, v in info["inputs"].items()},
        task=info["task"],
        outputs=info["outputs"],
        stats=stats,
    )
    if info["task"] == "regression" and target is not None:
        # The model learns the standardised target and answers in the target's own units, so
        # that what it finds does not depend on the units the target is written in.
        from snaketune.models import target_scaling

        mean, std = target
        build = functools.partial(target_scaling.build_model, build=build, mean=mean, std=std)
    return DefaultHyperModel(build)


def load_user_object(spec: str, key: str = "build_model"):
    """The function or class `path/to/file.py:name` names."""
    return user_code.load(spec, ConfigError, f"config: model.{key}", "function" if key == "build_model" else "class")
