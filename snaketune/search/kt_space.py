"""Convert between `snaketune.search.space.Space` and `keras_tuner.HyperParameters` (imports TensorFlow)."""

from __future__ import annotations

import contextlib
import gc

import keras_tuner as kt

from snaketune.core.errors import ConfigError
from snaketune.search.space import (
    FIT_ARGUMENTS,
    Condition,
    HyperParameter,
    Space,
    ask,
    check_asked,
    from_keras_tuner_config,
)


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
# An Int whose extremes change what the model asks for (the `range(hp.Int("num_layers", 1, 3))`
# of a loop) is then built at each of its values, up to this many.
MAX_SWEEP = 64


def discover(build_model, declared: Space, fit_arguments=FIT_ARGUMENTS, fit_probe=None) -> Space:
    """The search space of a build_model(hp), found the way Keras Tuner finds it, and further.

    Hyperparameters declared in the YAML are registered first, so they narrow or fix what
    build_model asks for (Keras Tuner's `hyperparameters=` argument). The model is then built
    again with each conditional scope switched on (as Keras Tuner's tuner does before its
    first trial) and with each value of each choice and boolean, so that hyperparameters
    behind a plain `if hp.Boolean(...)` are found before the first trial rather than during
    the search. Beyond Keras Tuner: each Int is tried at its extremes, and one whose extremes
    change what the model asks for is tried at every value (`for i in range(hp.Int(...))`
    asks for `units_0` .. `units_<max-1>`); a hyperparameter found only under some values of
    another is explored further from there (nested cases). Each hyperparameter asked for under
    some values of another only gets that other as its condition (see `_gates`), so that the
    strategies vary it only where the model uses it. At most MAX_BUILDS builds; one that
    fails away from the defaults is passed over (a trial there fails).
    `fit_probe(hp, model)`, where given, fits each model built (a HyperModel's fit, which may
    declare hyperparameters of its own, such as the batch size).
    """
    with _collecting_only_what_discovery_makes():
        return _discover(build_model, declared, fit_arguments, fit_probe)


@contextlib.contextmanager
def _collecting_only_what_discovery_makes():
    """Each build starts with Keras's clear_session(), whose garbage collection would scan
    every object of the process: with TensorFlow imported, ~400k of them, 0.3 s a build on a
    2-core machine, most of a discovery's time. What existed before discovery is frozen while
    it runs, so each collection scans only what the builds made, which is all it can free.
    A fork server's child starts frozen already (snaketune.core.forkserver.serve)."""
    if gc.get_freeze_count():
        yield
        return
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def _discover(build_model, declared: Space, fit_arguments, fit_probe) -> Space:
    space_hp = to_keras_tuner(declared)
    asked: set = set()
    builds: list[tuple[dict, frozenset]] = []  # (the values asked for, the names asked for)
    asked_under: dict = {}  # a build's assignment -> the names it asked for
    swept: set = set()
    # (assignment, the names its parent build asked for, the Int it varies and its parent's assignment)
    queue: list[tuple[dict, frozenset | None, tuple | None]] = [({}, None, None)]
    tried: list[dict] = []
    while queue and len(tried) < MAX_BUILDS:
        values, parent_asked, varied = queue.pop(0)
        tried.append(values)
        hp = _Recorder(space_hp, values)
        try:
            model = _build(build_model, hp)
            if fit_probe:
                try:
                    fit_probe(hp, model)
                except ConfigError:
                    raise
                except Exception as error:  # the user's fit: report what it raised
                    raise ConfigError(
                        f"build_model: its HyperModel's fit raised {type(error).__name__}: "
                        f"{str(error).splitlines()[0][:300] if str(error) else ''}"
                    ) from error
        except ConfigError:
            if not values:  # at its defaults the model must build: the check says why not
                raise
            # Some values of a model may not build (a loop of pooling layers run to an Int's
            # maximum on small images): a trial there fails, as in Keras Tuner; it tells
            # nothing about the space.
            continue
        asked |= hp.asked
        space_hp.merge(hp.space, overwrite=False)
        here = frozenset(hp.asked)
        builds.append(({name: hp.values.get(name) for name in here}, here))
        asked_under[_key(values)] = here
        # Keras Tuner's own exploration, first, so that the order of what it finds is kept
        candidates = [{c.name: c.values[0] for c in conditions} for conditions in hp.inactive_scopes]
        candidates += [{p.name: v} for p in space_hp.space if _is_choice(p) for v in _values(p)]
        new = here if parent_asked is None else here - parent_asked
        for p in space_hp.space:
            if p.name not in new or p.name in values:
                continue
            if _is_int(p):
                candidates += [{**values, p.name: v} for v in _extremes(p) if v != hp.values.get(p.name)]
            elif _is_choice(p) and values:  # found under this assignment only: explored from it
                candidates += [{**values, p.name: v} for v in _values(p)]
        if varied and here != asked_under.get(_key(varied[1])) and (_key(varied[1]), varied[0]) not in swept:
            swept.add((_key(varied[1]), varied[0]))
            candidates += [{**varied[1], varied[0]: v} for v in _values(space_hp._hps[varied[0]][0])[:MAX_SWEEP]]
        for candidate in candidates:
            if candidate not in tried and all(candidate != q[0] for q in queue):
                int_varied = [n for n in candidate if n not in values and _is_int(space_hp._hps[n][0])]
                parent = {k: v for k, v in candidate.items() if k not in int_varied}
                queue.append((candidate, here, (int_varied[0], parent) if len(int_varied) == 1 else None))
    check_asked(declared, asked, fit_arguments)
    return _gates(from_keras_tuner(space_hp), builds)


def _key(values: dict) -> str:
    return repr(sorted(values.items(), key=lambda item: item[0]))


def _is_choice(p) -> bool:
    return isinstance(p, (kt.engine.hyperparameters.Choice, kt.engine.hyperparameters.Boolean))


def _is_int(p) -> bool:
    return isinstance(p, kt.engine.hyperparameters.Int)


def _values(p) -> list:
    if isinstance(p, kt.engine.hyperparameters.Boolean):
        return [False, True]
    if _is_int(p):
        return from_keras_tuner_config("int", p.get_config()).grid_values()
    return list(p.values)


def _extremes(p) -> list:
    ladder = from_keras_tuner_config("int", p.get_config())
    return [ladder.min, ladder._rung(ladder._rungs())] if ladder._stepped else [ladder.min, ladder.max]


def _gates(space: Space, builds: list[tuple[dict, frozenset]]) -> Space:
    """Each hyperparameter that some builds asked for and others did not gets the condition
    that tells them apart: one choice, boolean or Int before it, asked for whenever it is,
    whose values it was asked under (and only those) were all seen. Keras Tuner's own
    conditions (hp.conditional_scope) stay as they are; one that no single other explains
    (asked under a combination of two) stays unconditioned, and a trial's record says
    whether its model asked for it (snaketune.trial.train)."""
    params = list(space)
    out = []
    for index, param in enumerate(params):
        asked_in = [values for values, names in builds if param.name in names]
        if param.conditions or len(asked_in) == len(builds) or not asked_in:
            out.append(param)
            continue
        for parent in reversed(params[:index]):  # the nearest first: a loop's count, not what gates it
            if parent.type not in ("choice", "boolean", "int") or not all(parent.name in v for v in asked_in):
                continue
            under = [(values[parent.name], param.name in names) for values, names in builds if parent.name in names]
            gating = {value for value, present in under if present}
            seen = {value for value, _ in under}
            if all((value in gating) == present for value, present in under) and (
                parent.type != "int" or seen >= set(parent.grid_values())
            ):
                condition = Condition(parent.name, tuple(v for v in parent.grid_values() if v in gating))
                param = HyperParameter(**{**param.__dict__, "conditions": (condition,)})
                break
        out.append(param)
    return Space(out)


def _build(build_model, hp):
    import keras

    keras.backend.clear_session()
    try:
        model = build_model(hp)
    except Exception as error:  # the user's code: report what it raised, and where
        raise ConfigError(f"build_model raised {type(error).__name__}: {error}") from error
    if not isinstance(model, keras.Model):
        raise ConfigError(f"build_model must return a keras.Model, got {type(model).__name__}")
    return model
