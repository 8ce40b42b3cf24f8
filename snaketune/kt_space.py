"""Convert between `snaketune.space.Space` and `keras_tuner.HyperParameters` (imports TensorFlow)."""

from __future__ import annotations

import contextlib

import keras_tuner as kt

from snaketune.config import FIT_ARGUMENTS
from snaketune.errors import ConfigError
from snaketune.space import HyperParameter, Space, ask, check_asked, from_keras_tuner_config


def declare(hp: kt.HyperParameters, param: HyperParameter) -> None:
    """Declare one hyperparameter on `hp`, the way a build_model(hp) would."""
    with contextlib.ExitStack() as stack:
        for condition in param.conditions:
            stack.enter_context(hp.conditional_scope(condition.name, list(condition.values)))
        ask(hp, param)


def to_keras_tuner(space: Space, values: dict | None = None) -> kt.HyperParameters:
    hp = kt.HyperParameters()
    for param in space:
        declare(hp, param)
    if values:
        hp.values.update(values)
    return hp


def from_keras_tuner(hps: kt.HyperParameters) -> Space:
    return Space([from_keras_tuner_config(type(hp).__name__.lower(), hp.get_config()) for hp in hps.space])


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


# Builds tried at most while looking for conditional hyperparameters (each takes milliseconds).
MAX_BUILDS = 200


def discover(build_model, declared: Space, fit_arguments=FIT_ARGUMENTS, fit_probe=None) -> Space:
    """The search space of a build_model(hp), found the way Keras Tuner finds it.

    Hyperparameters declared in the YAML are registered first, so they narrow or fix what
    build_model asks for (Keras Tuner's `hyperparameters=` argument). The model is then built
    again with each conditional scope switched on (as Keras Tuner's tuner does before its
    first trial) and with each value of each choice and boolean, so that hyperparameters
    behind a plain `if hp.Boolean(...)` are found before the first trial rather than during
    the search. `fit_probe(hp, model)`, where given, fits each model built (a HyperModel's fit,
    which may declare hyperparameters of its own, such as the batch size).
    """
    space_hp = to_keras_tuner(declared)
    asked: set = set()
    queue: list[dict] = [{}]
    tried: list[dict] = []
    while queue and len(tried) < MAX_BUILDS:
        values = queue.pop(0)
        tried.append(values)
        hp = _Recorder(space_hp, values)
        model = _build(build_model, hp)
        if fit_probe:
            try:
                fit_probe(hp, model)
            except ConfigError:
                raise
            except Exception as error:  # the user's fit: report what it raised
                raise ConfigError(f"build_model: its HyperModel's fit raised {type(error).__name__}: "
                                  f"{str(error).splitlines()[0][:300] if str(error) else ''}") from error
        asked |= hp.asked
        space_hp.merge(hp.space, overwrite=False)
        candidates = [{c.name: c.values[0] for c in conditions} for conditions in hp.inactive_scopes]
        candidates += [{p.name: v} for p in space_hp.space
                       if isinstance(p, (kt.engine.hyperparameters.Choice, kt.engine.hyperparameters.Boolean))
                       for v in (p.values if hasattr(p, "values") else (False, True))]
        queue += [c for c in candidates if c not in tried and c not in queue]
    check_asked(declared, asked, fit_arguments)
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
