"""The search space in Optuna's terms: each hyperparameter as an Optuna distribution, trials
as Optuna trials. The jobs that propose with Optuna's samplers and the study journal import
this; the workflow's parse does not (Optuna is imported inside the functions).

Mapped exactly: an int or a stepped float is an Int/FloatDistribution with its step, log
sampling stays log sampling, a choice or a boolean is categorical, a fixed value is no
parameter at all. A log-sampled ladder (min, min*step, min*step^2, ...) has no Optuna
counterpart: it is an IntDistribution over the rung, 0..k, and translated back. A
conditional hyperparameter is suggested only where its conditions hold (define-by-run), so
an inactive one is absent from the trial, as in Keras Tuner.
"""

from __future__ import annotations

import math

from snaketune.search.space import HyperParameter, Space


def _ladder(hp: HyperParameter) -> bool:
    return hp.sampling == "log" and hp.step is not None


def distribution(hp: HyperParameter):
    """Optuna's distribution of `hp`, or None for a fixed one."""
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    if hp.type == "fixed":
        return None
    if hp.type == "boolean":
        return CategoricalDistribution([False, True])
    if hp.type == "choice":
        return CategoricalDistribution(list(hp.values))
    if _ladder(hp):
        return IntDistribution(0, hp._rungs())
    if hp.type == "int":
        if hp.sampling == "log":
            return IntDistribution(int(hp.min), int(hp.max), log=True)
        # the last rung, not max: Optuna wants max - min to be a whole number of steps
        return IntDistribution(int(hp.min), hp._rung(hp._rungs()), step=int(hp.step or 1))
    if hp.step is not None:
        return FloatDistribution(hp.min, hp._rung(hp._rungs()), step=hp.step)
    return FloatDistribution(hp.min, hp.max, log=hp.sampling == "log")


def to_optuna(hp: HyperParameter, value):
    if _ladder(hp):
        return int(round(math.log(value / hp.min) / math.log(hp.step)))
    return value


def from_optuna(hp: HyperParameter, value):
    if _ladder(hp):
        return hp._rung(int(value))
    return hp.normalise(value)


def distributions(space: Space, values: dict) -> tuple[dict, dict]:
    """(params, distributions) of a configuration, as Optuna records a trial's."""
    params, dists = {}, {}
    for hp in space:
        dist = distribution(hp)
        if dist is not None and hp.name in values:
            params[hp.name] = to_optuna(hp, values[hp.name])
            dists[hp.name] = dist
    return params, dists


def suggest(trial, space: Space) -> dict:
    """A configuration from an Optuna trial (asked or fixed), in declaration order."""
    values: dict = {}
    for hp in space:
        if not hp.is_active(values):
            continue
        dist = distribution(hp)
        values[hp.name] = hp.default if dist is None else from_optuna(hp, _suggest(trial, hp.name, dist))
    return space.complete(values)


def _suggest(trial, name: str, dist):
    from optuna.distributions import CategoricalDistribution, IntDistribution

    if isinstance(dist, CategoricalDistribution):
        return trial.suggest_categorical(name, dist.choices)
    if isinstance(dist, IntDistribution):
        return trial.suggest_int(name, dist.low, dist.high, step=dist.step, log=dist.log)
    return trial.suggest_float(name, dist.low, dist.high, step=dist.step, log=dist.log)


def frozen_trial(
    space: Space, values: dict, value: float | None, *, failed: bool = False, user_attrs=None, intermediate_values=None
):
    """A finished trial as Optuna records it (failed ones as failed, with no value)."""
    import optuna

    params, dists = distributions(space, values)
    state = optuna.trial.TrialState.FAIL if failed else optuna.trial.TrialState.COMPLETE
    return optuna.trial.create_trial(
        state=state,
        value=None if failed else value,
        params=params,
        distributions=dists,
        user_attrs=user_attrs or {},
        intermediate_values=intermediate_values or {},
    )
