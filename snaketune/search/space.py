"""Search spaces with Keras Tuner's semantics, in plain Python.

The workflow builds its DAG from the search space, so this module must not import
TensorFlow or Keras Tuner: the Snakefile is parsed by every job (and, on a cluster,
on every node).  Conversion to and from `keras_tuner.HyperParameters` lives in
`snaketune.search.kt_space`, which the jobs import.
"""

from __future__ import annotations

import json
import math
import random
from dataclasses import asdict, dataclass, field
from typing import Any

from snaketune.core.errors import ConfigError

TYPES = ("int", "float", "choice", "boolean", "fixed")
SAMPLINGS = ("linear", "log")
# Significant digits kept of a float value, so that 0.1 * 3 is stored as 0.3, not
# 0.30000000000000004, and equal configurations get equal trial ids.
_DIGITS = 12
# Hyperparameters that are arguments of model.fit rather than of build_model(hp): snaketune
# passes them to fit for a build_model and a built-in model (a HyperModel's own fit sets them).
FIT_ARGUMENTS = ("batch_size", "epochs")
DEFAULT_BATCH_SIZE = 32  # Keras' own default for model.fit
# Names the trial record uses for its own columns; a hyperparameter may not take them.
RESERVED = frozenset(
    {
        "study",
        "strategy",
        "trial_id",
        "trial_number",
        "round",
        "objective",
        "objective_value",
        "objective_epoch",
        "epochs_run",
        "fit_seconds",
        "params",
        "status",
        "error",
        "hyperparameters",
        "unused",
    }
)


@dataclass(frozen=True)
class Condition:
    """Active only while hyperparameter `name` takes one of `values` (hp.conditional_scope)."""

    name: str
    values: tuple

    def holds(self, assignment: dict) -> bool:
        return assignment.get(self.name) in self.values


@dataclass(frozen=True)
class HyperParameter:
    name: str
    type: str
    min: float | int | None = None
    max: float | int | None = None
    step: float | int | None = None
    sampling: str = "linear"
    values: tuple = ()
    ordered: bool | None = None
    default: Any = None
    conditions: tuple[Condition, ...] = field(default_factory=tuple)

    @property
    def _stepped(self) -> bool:
        """Values form a ladder min, min+step, ... (or min, min*step, ... with log sampling).

        An int without a step is a ladder of step 1 when linear, but log-sampled it is drawn
        log-uniformly and rounded, as Keras Tuner does.
        """
        return self.step is not None or (self.type == "int" and self.sampling == "linear")

    def _rungs(self) -> int:
        """Index of the last rung of the ladder."""
        step = self.step if self.step is not None else 1
        if self.sampling == "log":
            return math.floor(math.log(self.max / self.min) / math.log(step) + 1e-9)
        # Counting steps (not adding them) keeps a max the user wrote reachable: Keras
        # Tuner's floor((max - min) / step) drops it through float error.
        return math.floor((self.max - self.min) / step + 1e-9)

    def _rung(self, k: int):
        step = self.step if self.step is not None else 1
        return self._cast(self.min * step**k if self.sampling == "log" else self.min + k * step)

    def grid_values(self) -> list:
        """Every value the hyperparameter can take, if there are finitely many."""
        if self.type == "fixed":
            return [self.default]
        if self.type == "boolean":
            return [False, True]
        if self.type == "choice":
            return list(self.values)
        if self._stepped:
            return [self._rung(k) for k in range(self._rungs() + 1)]
        if self.type == "int":
            return list(range(self.min, self.max + 1))
        raise ConfigError(f"space.{self.name}: a float without `step` has no finite set of values")

    def _cast(self, value):
        if self.type == "int":
            return int(round(value))
        return float(f"{float(value):.{_DIGITS}g}")

    def contains(self, value) -> bool:
        """Whether `value` is one this hyperparameter can take."""
        if self.type in ("fixed", "boolean", "choice"):
            return any(value == v and type(value) is type(v) for v in self.grid_values())
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            return False
        if self.type == "int" and not float(value).is_integer():
            return False
        if not (self.min - 1e-12 * abs(self.min) <= value <= self.max + 1e-12 * abs(self.max)):
            return False
        if not self._stepped:
            return True
        step = self.step if self.step is not None else 1
        k = math.log(value / self.min) / math.log(step) if self.sampling == "log" else (value - self.min) / step
        return _close(value, self._rung(round(k)))

    def sample(self, rng: random.Random):
        """A value drawn uniformly (log-uniformly for log sampling) from this hyperparameter."""
        if self.type == "fixed":
            return self.default
        if self.type == "boolean":
            return rng.random() < 0.5
        if self.type == "choice":
            return self.values[rng.randrange(len(self.values))]
        if self._stepped:
            return self._rung(rng.randrange(self._rungs() + 1))
        if self.sampling == "log":
            value = math.exp(rng.uniform(math.log(self.min), math.log(self.max)))
        else:
            value = rng.uniform(self.min, self.max)
        return min(max(self._cast(value), self.min), self.max)

    def is_active(self, assignment: dict) -> bool:
        return all(c.holds(assignment) for c in self.conditions)

    def normalise(self, value):
        """The canonical form of a value, so equal configurations get equal trial ids."""
        if self.type == "float" and isinstance(value, (int, float)) and not isinstance(value, bool):
            return self._cast(value)
        if self.type == "int" and isinstance(value, float) and value.is_integer():
            return int(value)
        return value

    def to_dict(self) -> dict:
        d = {k: v for k, v in asdict(self).items() if v not in (None, (), [])}
        if self.type not in ("int", "float"):
            d.pop("sampling", None)
        d["values"] = list(self.values) if self.values else None
        d["conditions"] = [{"name": c.name, "values": list(c.values)} for c in self.conditions]
        return {k: v for k, v in d.items() if v not in (None, [])}


def _close(a, b) -> bool:
    return isinstance(a, (int, float)) and not isinstance(a, bool) and math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)


def parse_hyperparameter(name: str, spec: Any) -> HyperParameter:
    """Build one hyperparameter from its YAML form, naming `space.<name>` in any error."""
    key = f"space.{name}"
    if name in RESERVED:
        raise ConfigError(f"{key}: '{name}' is a column of the trial record; rename the hyperparameter")
    if not isinstance(spec, dict):
        # A bare value fixes the hyperparameter, like hp.Fixed.
        return _checked(HyperParameter(name=name, type="fixed", default=spec), key)
    kind = spec.get("type")
    if kind not in TYPES:
        raise ConfigError(f"{key}.type: expected one of {', '.join(TYPES)}, got {kind!r}")
    allowed = {
        "int": {"type", "min", "max", "step", "sampling", "default", "conditions"},
        "float": {"type", "min", "max", "step", "sampling", "default", "conditions"},
        "choice": {"type", "values", "ordered", "default", "conditions"},
        "boolean": {"type", "default", "conditions"},
        "fixed": {"type", "value", "conditions"},
    }[kind]
    unknown = sorted(set(spec) - allowed)
    if unknown:
        raise ConfigError(f"{key}: unknown key(s) {unknown} for type {kind}; expected some of {sorted(allowed)}")
    conditions = _parse_conditions(spec.get("conditions", []), key)
    if kind == "fixed":
        if "value" not in spec:
            raise ConfigError(f"{key}.value: a fixed hyperparameter needs a value")
        hp = HyperParameter(name=name, type="fixed", default=spec["value"], conditions=conditions)
    elif kind == "choice":
        if not isinstance(spec.get("values"), list):
            raise ConfigError(f"{key}.values: expected a list of values, got {spec.get('values')!r}")
        hp = HyperParameter(
            name=name,
            type="choice",
            values=tuple(spec["values"]),
            ordered=spec.get("ordered"),
            default=spec.get("default"),
            conditions=conditions,
        )
    elif kind == "boolean":
        if not isinstance(spec.get("default", False), bool):
            raise ConfigError(f"{key}.default: expected true or false, got {spec['default']!r}")
        hp = HyperParameter(name=name, type="boolean", default=spec.get("default", False), conditions=conditions)
    else:
        hp = HyperParameter(
            name=name,
            type=kind,
            min=spec.get("min"),
            max=spec.get("max"),
            step=spec.get("step"),
            sampling=spec.get("sampling", "linear"),
            default=spec.get("default"),
            conditions=conditions,
        )
    return _checked(hp, key)


def ask(hp, param: HyperParameter):
    """Ask `hp` (Keras Tuner's HyperParameters, or anything with its hp.Int, Float, Choice,
    Boolean and Fixed) for `param`, as a build_model(hp) would; its conditions are the caller's."""
    if param.type == "int":
        return hp.Int(param.name, param.min, param.max, step=param.step, sampling=param.sampling, default=param.default)
    if param.type == "float":
        return hp.Float(
            param.name,
            param.min,
            _reachable_max(param),
            step=param.step,
            sampling=param.sampling,
            default=param.default,
        )
    if param.type == "choice":
        return hp.Choice(param.name, list(param.values), ordered=param.ordered, default=param.default)
    if param.type == "boolean":
        return hp.Boolean(param.name, default=param.default)
    return hp.Fixed(param.name, param.default)


def _reachable_max(param: HyperParameter) -> float:
    """Keras Tuner counts a stepped Float's values as floor((max - min) / step) + 1, which
    drops the max through float error (0.5 // 0.1 == 4.0); a hair above the max keeps the
    value the user wrote reachable for its oracles (`_last_rung` undoes it)."""
    if param.step is None:
        return param.max
    return param.max * (1 + 1e-9) if param.sampling == "log" else param.max + param.step * 1e-9


def from_keras_tuner_config(kind: str, config: dict) -> HyperParameter:
    """One hyperparameter from the `get_config()` of Keras Tuner's `kind` (int, float, choice,
    boolean, fixed), conditions included; no TensorFlow needed."""
    config = dict(config)
    conditions = tuple(
        Condition(c["config"]["name"], tuple(c["config"]["values"])) for c in config.get("conditions", [])
    )
    if kind == "float" and config.get("step"):
        config["max_value"] = _last_rung(config)
    if kind in ("int", "float"):
        spec = {
            "type": kind,
            "min": config["min_value"],
            "max": config["max_value"],
            "step": config.get("step"),
            "sampling": config.get("sampling") or "linear",
            "default": config.get("default"),
        }
        if spec["step"] is None:
            del spec["step"]
    elif kind == "choice":
        spec = {
            "type": "choice",
            "values": list(config["values"]),
            "ordered": config.get("ordered"),
            "default": config.get("default"),
        }
    elif kind == "boolean":
        spec = {"type": "boolean", "default": bool(config.get("default"))}
    else:
        spec = {"type": "fixed", "value": config["value"]}
    try:
        param = parse_hyperparameter(config["name"], spec)
    except ConfigError as error:
        raise ConfigError(f"build_model: hp.{kind.capitalize()}('{config['name']}', ...): {error}") from None
    return HyperParameter(**{**param.__dict__, "conditions": conditions})


def check_asked(declared: Space, asked, fit_arguments) -> None:
    """Every declared hyperparameter is one the model asks for, or one of fit's arguments."""
    unused = [n for n in declared.names if n not in asked and n not in fit_arguments]
    if unused:
        raise ConfigError(
            f"config: space.{unused[0]}: build_model never asks for '{unused[0]}' "
            f"(it asks for: {', '.join(sorted(asked)) or 'nothing'}); remove or rename it"
        )


def _last_rung(config: dict) -> float:
    """The largest value on a stepped Float's ladder, as the user wrote it (Keras Tuner is
    given a hair above it: `_reachable_max`)."""
    low, high, step = config["min_value"], config["max_value"], config["step"]
    if config.get("sampling") == "log":
        return float(f"{low * step ** math.floor(math.log(high / low) / math.log(step) + 1e-6):.12g}")
    return float(f"{low + step * math.floor((high - low) / step + 1e-6):.12g}")


def _parse_conditions(raw, key: str) -> tuple:
    if not isinstance(raw, list) or not all(
        isinstance(c, dict) and set(c) == {"name", "values"} and isinstance(c["values"], list) and c["values"]
        for c in raw
    ):
        raise ConfigError(f"{key}.conditions: expected a list of {{name: <parent>, values: [...]}}, got {raw!r}")
    return tuple(Condition(c["name"], tuple(c["values"])) for c in raw)


def _checked(hp: HyperParameter, key: str) -> HyperParameter:
    """Validate a hyperparameter and fill in Keras Tuner's defaults."""
    if hp.type == "choice":
        if not hp.values:
            raise ConfigError(f"{key}.values: a choice needs at least one value")
        if len(set(map(_hashable, hp.values))) != len(hp.values):
            raise ConfigError(f"{key}.values: values must be distinct, got {list(hp.values)}")
        for v in hp.values:
            if not isinstance(v, (int, float, str, bool)):
                raise ConfigError(f"{key}.values: expected numbers, strings or booleans, got {v!r}")
        kinds = {type(v) for v in hp.values}
        if len(kinds) > 1 and not kinds <= {int, float}:
            raise ConfigError(f"{key}.values: all values must be of one type, got {list(hp.values)}")
        default = hp.values[0] if hp.default is None else hp.default
        if not _replace(hp, default=default).contains(default):
            raise ConfigError(f"{key}.default: {default!r} is not one of the values {list(hp.values)}")
        # Keras Tuner's default: numbers are ordered (its Bayesian oracle treats them as a scale)
        ordered = (
            hp.ordered
            if hp.ordered is not None
            else all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in hp.values)
        )
        return _replace(hp, default=default, ordered=ordered)
    if hp.type in ("boolean", "fixed"):
        return hp
    for bound in ("min", "max"):
        value = getattr(hp, bound)
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            raise ConfigError(f"{key}.{bound}: expected a number, got {value!r}")
        if hp.type == "int" and not float(value).is_integer():
            raise ConfigError(f"{key}.{bound}: expected an integer, got {value!r}")
    if hp.min > hp.max:
        raise ConfigError(f"{key}: min ({hp.min}) is greater than max ({hp.max})")
    if hp.sampling not in SAMPLINGS:
        raise ConfigError(f"{key}.sampling: expected one of {', '.join(SAMPLINGS)}, got {hp.sampling!r}")
    if hp.sampling == "log" and hp.min <= 0:
        raise ConfigError(f"{key}: log sampling needs min > 0, got min = {hp.min}")
    if hp.step is not None:
        if not isinstance(hp.step, (int, float)) or isinstance(hp.step, bool) or hp.step <= 0:
            raise ConfigError(f"{key}.step: expected a positive number, got {hp.step!r}")
        if hp.sampling == "log" and hp.step <= 1:
            raise ConfigError(f"{key}.step: with log sampling the step multiplies and must be > 1, got {hp.step}")
        if hp.type == "int" and not float(hp.step).is_integer():
            raise ConfigError(f"{key}.step: expected an integer, got {hp.step!r}")
    if hp.type == "int":
        hp = _replace(hp, min=int(hp.min), max=int(hp.max), step=None if hp.step is None else int(hp.step))
    else:
        hp = _replace(hp, min=float(hp.min), max=float(hp.max))
    default = hp.min if hp.default is None else hp.default
    hp = _replace(hp, default=hp._cast(default) if isinstance(default, (int, float)) else default)
    if not hp.contains(hp.default):
        raise ConfigError(f"{key}.default: {default!r} is not a value of this hyperparameter")
    return hp


def _replace(hp: HyperParameter, **changes) -> HyperParameter:
    return HyperParameter(**{**hp.__dict__, **changes})


def _hashable(v):
    return (type(v).__name__, v)


class Space:
    """An ordered set of hyperparameters (the order is Keras Tuner's declaration order)."""

    def __init__(self, hyperparameters: list[HyperParameter]):
        self.hyperparameters = list(hyperparameters)
        self._by_name = {hp.name: hp for hp in self.hyperparameters}
        if len(self._by_name) != len(self.hyperparameters):
            raise ConfigError("space: a hyperparameter name appears twice")

    @classmethod
    def from_config(cls, space_config: dict) -> Space:
        """The space the config's `space:` declares, its conditions checked."""
        space = cls([parse_hyperparameter(name, spec) for name, spec in (space_config or {}).items()])
        seen: dict = {}
        for hp in space:
            for condition in hp.conditions:
                parent = seen.get(condition.name)
                where = f"space.{hp.name}.conditions"
                if parent is None:
                    raise ConfigError(
                        f"{where}: parent '{condition.name}' must be a hyperparameter declared before '{hp.name}'"
                    )
                bad = [v for v in condition.values if not parent.contains(v)]
                if bad:
                    raise ConfigError(f"{where}: {bad} are not values of space.{condition.name}")
            seen[hp.name] = hp
        return space

    def __contains__(self, name) -> bool:
        return name in self._by_name

    def __getitem__(self, name) -> HyperParameter:
        return self._by_name[name]

    def __iter__(self):
        return iter(self.hyperparameters)

    def __len__(self):
        return len(self.hyperparameters)

    @property
    def names(self) -> list[str]:
        return [hp.name for hp in self.hyperparameters]

    def defaults(self) -> dict:
        return self.complete({})

    def complete(self, values: dict) -> dict:
        """Fill unset hyperparameters with defaults and drop inactive ones, in declaration order."""
        out: dict = {}
        for hp in self.hyperparameters:
            if hp.is_active(out):
                out[hp.name] = hp.normalise(values.get(hp.name, hp.default))
        return out

    def sample(self, rng: random.Random) -> dict:
        out: dict = {}
        for hp in self.hyperparameters:
            if hp.is_active(out):
                out[hp.name] = hp.sample(rng)
        return out

    def to_json(self) -> str:
        return json.dumps([hp.to_dict() for hp in self.hyperparameters], indent=2)

    @classmethod
    def from_json(cls, text: str) -> Space:
        return cls([_from_dict(d) for d in json.loads(text)])


def _from_dict(d: dict) -> HyperParameter:
    d = dict(d)
    d["values"] = tuple(d.get("values") or ())
    d["conditions"] = tuple(Condition(c["name"], tuple(c["values"])) for c in d.get("conditions", []))
    return HyperParameter(**d)
