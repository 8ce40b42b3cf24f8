"""The search space of a built-in model (mlp, cnn), without TensorFlow.

A built-in model asks for its hyperparameters in a function of its own, `hyperparameters(hp)`,
unconditionally; this module hands it a recorder in place of Keras Tuner's HyperParameters
and merges what it asked for with the declared space the way `snaketune.search.kt_space.discover`
does: the declared entries first and as written, then those the model asks for and the YAML
leaves out, in the order asked. The study's first job then needs no TensorFlow import, and
the fork server the trials use imports it meanwhile. tests/test_builtin_space.py checks that
both ways give the same space.
"""

from __future__ import annotations

import importlib

from snaketune.search.space import FIT_ARGUMENTS, HyperParameter, Space, ask, check_asked, from_keras_tuner_config


class _Asked:
    """Keras Tuner's `hp.Int/Float/Choice/Boolean/Fixed` as a model calls them. The first call
    for a name registers it as Keras Tuner's `get_config()` would describe it (with Keras
    Tuner's defaults for what the call leaves out); every call returns its default."""

    def __init__(self):
        self.registered: dict[str, HyperParameter] = {}
        self.asked: set[str] = set()

    def _ask(self, kind: str, config: dict):
        name = config["name"]
        self.asked.add(name)
        if name not in self.registered:
            self.registered[name] = from_keras_tuner_config(kind, {**config, "conditions": []})
        return self.registered[name].default

    def Int(self, name, min_value, max_value, step=None, sampling="linear", default=None, **_):
        """Keras Tuner's HyperParameters.Int, recorded."""
        if step is None and sampling == "linear":
            step = 1
        return self._ask(
            "int",
            {
                "name": name,
                "min_value": min_value,
                "max_value": max_value,
                "step": step,
                "sampling": sampling,
                "default": default,
            },
        )

    def Float(self, name, min_value, max_value, step=None, sampling="linear", default=None, **_):
        return self._ask(
            "float",
            {
                "name": name,
                "min_value": min_value,
                "max_value": max_value,
                "step": step,
                "sampling": sampling,
                "default": min_value if default is None else default,
            },
        )

    def Choice(self, name, values, ordered=None, default=None, **_):
        if ordered is None:
            ordered = isinstance(values[0], (int, float))
        if default is None and None not in values:
            default = values[0]
        return self._ask("choice", {"name": name, "values": list(values), "ordered": ordered, "default": default})

    def Boolean(self, name, default=False, **_):
        return self._ask("boolean", {"name": name, "default": default})

    def Fixed(self, name, value, **_):
        return self._ask("fixed", {"name": name, "value": value})


def discover(model_type: str, declared: Space, fit_arguments=FIT_ARGUMENTS) -> Space | None:
    """The search space of the built-in `model_type` under the `declared` space; None where
    the declared space has conditional hyperparameters (Keras Tuner's conditional scopes decide
    those: see snaketune.search.kt_space.discover)."""
    if any(param.conditions for param in declared):
        return None
    hp = _Asked()
    for param in declared:  # registered first, as kt_space.discover does on Keras Tuner's
        ask(hp, param)
    hp.asked.clear()
    importlib.import_module(f"snaketune.models.{model_type}").hyperparameters(hp)
    check_asked(declared, hp.asked, fit_arguments)
    return Space(list(hp.registered.values()))
