"""What a study's trials say, computed from the trial table (trials.csv) with Optuna's own
implementations where they exist: the trials as Optuna studies (one per strategy and
replicate), hyperparameter importance, and the Pareto fronts of the objective against model
size and against training time."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd

from snaketune.search.objective import Objective
from snaketune.search.space import Space

# Optuna's fANOVA fits a random forest per call: past this many trials, PED-ANOVA, which
# Optuna recommends for large studies, takes over.
PED_ANOVA_FROM = 1000
# Two results closer than this (relative) are one result on the Pareto front's "within" list.
NEAR_BEST = 0.001


def completed(trials: pd.DataFrame) -> pd.DataFrame:
    return trials[(trials["status"] == "completed") & trials["objective_value"].notna()]


def study_name(strategy: str, replicate: int) -> str:
    return strategy if not replicate else f"{strategy}/replicate_{replicate}"


def unused_names(row) -> list[str]:
    """The hyperparameters a trial's model never asked for (snaketune.trial.train.unused)."""
    text = row.get("unused") if isinstance(row, dict) else getattr(row, "unused", "")
    return [name for name in (text or "").split(";") if name] if isinstance(text, str) else []


def frozen_trials(trials: pd.DataFrame, space: Space, objective: Objective, histories: dict | None = None) -> list:
    """The rows of `trials` as Optuna's FrozenTrials, in order: completed ones with their
    objective value, the others failed; each with its trial id, strategy and, where its
    history is given, the objective per epoch as intermediate values."""
    from snaketune.search.optuna_space import frozen_trial

    out = []
    for row in trials.itertuples(index=False):
        values = space.complete(json.loads(row.hyperparameters))
        values = {k: v for k, v in values.items() if k not in unused_names(row)}  # inactive for Optuna
        ok = row.status == "completed" and not pd.isna(row.objective_value)
        intermediate = {}
        if histories and row.trial_id in histories and Path(histories[row.trial_id]).exists():
            history = pd.read_csv(histories[row.trial_id])
            if objective.name in history:
                intermediate = {
                    int(e): float(v) for e, v in zip(history["epoch"], history[objective.name]) if not pd.isna(v)
                }
        out.append(
            frozen_trial(
                space,
                values,
                float(row.objective_value) if ok else None,
                failed=not ok,
                user_attrs={"trial_id": row.trial_id, "strategy": row.strategy, "trial_number": int(row.trial_number)},
                intermediate_values=intermediate,
            )
        )
    return out


def optuna_study(
    trials: pd.DataFrame,
    space: Space,
    objective: Objective,
    *,
    name="snaketune",
    storage=None,
    histories: dict | None = None,
):
    """An Optuna study holding every trial as a FrozenTrial (its epochs as intermediate values
    where `histories` gives them), in `storage` or in memory."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    study = optuna.create_study(
        study_name=name, storage=storage, direction="maximize" if objective.direction == "max" else "minimize"
    )
    study.add_trials(frozen_trials(trials, space, objective, histories))
    return study


def write_journal(trials: pd.DataFrame, space: Space, objective: Objective, *, path, histories: dict | None = None):
    """The study as an Optuna journal file, one Optuna study per strategy and replicate, for
    `optuna-dashboard <path>`. Written whole to a temporary file, then moved into place."""
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    from snaketune.core.atomic import atomic_path

    with atomic_path(path) as tmp:
        storage = JournalStorage(JournalFileBackend(str(tmp)))
        for (strategy, replicate), group in trials.groupby(["strategy", "replicate"], sort=False):
            study = optuna_study(
                group, space, objective, name=study_name(strategy, int(replicate)), storage=storage, histories=histories
            )
            study.set_metric_names([objective.name])  # the dashboard's axis, instead of "Objective 0"
        del storage
    return path


def importances(trials: pd.DataFrame, space: Space, objective: Objective) -> pd.DataFrame:
    """Hyperparameter importance (Optuna's fANOVA, PED-ANOVA past 1,000 trials), over every
    distinct completed trial ("all") and per strategy: one column each, a hyperparameter per
    row, each column summing to 1. A column is left out where fewer than 3 trials completed or
    nothing varied."""
    import optuna
    from optuna.importance import FanovaImportanceEvaluator, PedAnovaImportanceEvaluator

    columns = {"all": trials.drop_duplicates("trial_id")}
    if trials["strategy"].nunique() > 1:
        columns.update({s: g for s, g in trials.groupby("strategy", sort=False)})
    out = {}
    for name, group in columns.items():
        done = completed(group)
        if len(done) < 3:
            continue
        study = optuna_study(done, space, objective)
        evaluator = PedAnovaImportanceEvaluator() if len(done) > PED_ANOVA_FROM else FanovaImportanceEvaluator(seed=0)
        try:
            scores = optuna.importance.get_param_importances(study, evaluator=evaluator, normalize=True)
        except (RuntimeError, ValueError):  # nothing varied across these trials
            continue
        if scores and math.isfinite(sum(scores.values())):
            out[name] = scores
    return pd.DataFrame(out).reindex([hp.name for hp in space if any(hp.name in s for s in out.values())])


def pareto_front(trials: pd.DataFrame, objective: Objective, cost: str) -> pd.DataFrame:
    """The distinct completed trials no other beats on both the objective and `cost` (params:
    the model's parameter count; fit_seconds: its training time), cheapest first."""
    done = completed(trials).drop_duplicates("trial_id")
    if done.empty:
        return done
    sign = 1 if objective.direction == "max" else -1
    score, price = sign * done["objective_value"].to_numpy(float), done[cost].to_numpy(float)
    keep = [not np.any((score >= s) & (price <= c) & ((score > s) | (price < c))) for s, c in zip(score, price)]
    return done[keep].sort_values(cost, kind="stable")


def smallest_near_best(trials: pd.DataFrame, objective: Objective):
    """The trial with the fewest parameters whose objective is within 0.1 % of the best: often
    the one to ship."""
    done = completed(trials).drop_duplicates("trial_id")
    if done.empty:
        return None
    best = done["objective_value"].max() if objective.direction == "max" else done["objective_value"].min()
    tolerance = NEAR_BEST * abs(best)
    near = done[(done["objective_value"] - best).abs() <= tolerance]
    return near.sort_values(
        ["params", "objective_value"], ascending=[True, objective.direction == "min"], kind="stable"
    ).iloc[0]
