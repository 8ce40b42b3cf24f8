"""Model builders: the built-in hypermodels and a user's own Keras Tuner build_model(hp)."""

from __future__ import annotations

import functools
import importlib
import importlib.util
from pathlib import Path

from snaketune.errors import ConfigError

# Shape used only to discover a built-in model's hyperparameters, before any data is at hand.
NOMINAL_INPUT = ((28, 28, 1), 10)


def resolve(model_spec: dict, input_shape=None, num_classes=None):
    """Return a build_model(hp) for the configured model."""
    if "build_model" in model_spec:
        return load_user_function(model_spec["build_model"])
    kind = model_spec["type"]
    input_shape, num_classes = (input_shape, num_classes) if input_shape else NOMINAL_INPUT
    module = importlib.import_module(f"snaketune.models.{kind}")
    return functools.partial(module.build_model, input_shape=tuple(input_shape), num_classes=num_classes)


def load_user_function(spec: str):
    file, name = spec.rsplit(":", 1)
    path = Path(file)
    module_spec = importlib.util.spec_from_file_location(f"snaketune_user_model_{path.stem}", path)
    module = importlib.util.module_from_spec(module_spec)
    try:
        module_spec.loader.exec_module(module)
    except Exception as error:
        raise ConfigError(f"config: model.build_model: importing '{file}' raised "
                          f"{type(error).__name__}: {error}") from error
    function = getattr(module, name, None)
    if not callable(function):
        raise ConfigError(f"config: model.build_model: '{file}' has no function '{name}'")
    return function
