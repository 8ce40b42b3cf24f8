"""Convert between `snaketune.space.Space` and `keras_tuner.HyperParameters` (imports TensorFlow)."""

from __future__ import annotations

import contextlib
import copy

import keras_tuner as kt

from snaketune.config import FIT_ARGUMENTS
from snaketune.errors import ConfigError
from snaketune.space import Condition, HyperParameter, Space, parse_hyperparameter


def declare(hp: kt.HyperParameters, param: HyperParameter) -> None:
    """Declare one hyperparameter on `hp`, the way a build_model(hp) would."""
    with contextlib.ExitStack() as stack:
        for condition in param.conditions:
            stack.enter_context(hp.conditional_scope(condition.name, list(condition.values)))
        if param.type == "int":
            hp.Int(param.name, param.min, param.max, step=param.step, sampling=param.sampling, default=param.default)
        elif param.type == "float":
            hp.Float(param.name, param.min, param.max, step=param.step, sampling=param.sampling, default=param.default)
        elif param.type == "choice":
            hp.Choice(param.name, list(param.values), ordered=param.ordered, default=param.default)
        elif param.type == "boolean":
            hp.Boolean(param.name, default=param.default)
        else:
            hp.Fixed(param.name, param.default)


def to_keras_tuner(space: Space, values: dict | None = None) -> kt.HyperParameters:
    hp = kt.HyperParameters()
    for param in space:
        declare(hp, param)
    if values:
        hp.values.update(values)
    return hp


def from_keras_tuner(hps: kt.HyperParameters) -> Space:
    params = []
    for hp in hps.space:
        config = hp.get_config()
        conditions = tuple(
            Condition(c["config"]["name"], tuple(c["config"]["values"])) for c in config.get("conditions", [])
        )
        kind = type(hp).__name__.lower()
        if kind in ("int", "float"):
            spec = {
                "type": kind, "min": config["min_value"], "max": config["max_value"],
                "step": config.get("step"), "sampling": config.get("sampling") or "linear",
                "default": config.get("default"),
            }
            if spec["step"] is None:
                del spec["step"]
        elif kind == "choice":
            spec = {"type": "choice", "values": list(config["values"]), "ordered": config.get("ordered"),
                    "default": config.get("default")}
        elif kind == "boolean":
            spec = {"type": "boolean", "default": bool(config.get("default"))}
        else:
            spec = {"type": "fixed", "value": config["value"]}
        try:
            param = parse_hyperparameter(hp.name, spec)
        except ConfigError as error:
            raise ConfigError(f"build_model: hp.{type(hp).__name__}('{hp.name}', ...): {error}") from None
        params.append(HyperParameter(**{**param.__dict__, "conditions": conditions}))
    return Space(params)


class _Recorder(kt.HyperParameters):
    """A container that remembers which names build_model asked for."""

    def __init__(self, template: kt.HyperParameters, values: dict):
        super().__init__()
        self.merge(template.space)
        self.values.update(values)
        # Keras Tuner's ensure_active_values() would draw unseeded random values for newly
        # active hyperparameters; defaults keep discovery, and so space.json, reproducible.
        for hp in self.space:
            if self.is_active(hp) and hp.name not in self.values:
                self.values[hp.name] = hp.default
        self.asked: set = set()

    def _retrieve(self, hp):
        self.asked.add(hp.name)
        return super()._retrieve(hp)


def discover(build_model, declared: Space, fit_arguments=FIT_ARGUMENTS) -> Space:
    """The search space of a build_model(hp), found the way Keras Tuner finds it.

    Hyperparameters declared in the YAML are registered first, so they narrow or fix what
    build_model asks for (Keras Tuner's `hyperparameters=` argument). The model is built
    again with each not-yet-active conditional scope switched on until every scope has
    been active once, as Keras Tuner's tuner does before its first trial.
    """
    space_hp = to_keras_tuner(declared)
    never_active: list = []
    once_active: list = []
    asked: set = set()
    values: dict = {}
    while True:
        hp = _Recorder(space_hp, values)
        _build(build_model, hp)
        asked |= hp.asked
        space_hp.merge(hp.space, overwrite=False)
        for conditions in hp.active_scopes:
            if conditions not in once_active:
                once_active.append(copy.deepcopy(conditions))
            if conditions in never_active:
                never_active.remove(conditions)
        for conditions in hp.inactive_scopes:
            if conditions not in once_active and conditions not in never_active:
                never_active.append(copy.deepcopy(conditions))
        if not never_active:
            break
        values = {condition.name: condition.values[0] for condition in never_active[0]}
    unused = [n for n in declared.names if n not in asked and n not in fit_arguments]
    if unused:
        raise ConfigError(
            f"config: space.{unused[0]}: build_model never asks for '{unused[0]}' "
            f"(it asks for: {', '.join(sorted(asked)) or 'nothing'}); remove or rename it"
        )
    return from_keras_tuner(space_hp)


def _build(build_model, hp):
    import keras

    keras.backend.clear_session()
    try:
        model = build_model(hp)
    except Exception as error:  # the user's code: report what it raised, and where
        raise ConfigError(f"build_model raised {type(error).__name__}: {error}") from error
    if not isinstance(model, keras.Model):
        raise ConfigError(
            f"build_model must return a keras.Model, got {type(model).__name__}"
        )
    return model
