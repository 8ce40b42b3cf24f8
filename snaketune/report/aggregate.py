"""Gather every trial of every strategy; find the best configuration per strategy and overall."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from snaketune.core.atomic import write_csv, write_json, write_text
from snaketune.core.layout import Layout
from snaketune.report.analysis import completed, unused_names, write_journal
from snaketune.search.objective import Objective, objective_from
from snaketune.search.space import Space
from snaketune.search.strategies import ALL
from snaketune.trial.fits import SPREAD_COLUMNS

RECORD_COLUMNS = [
    "objective",
    "objective_value",
    "objective_epoch",
    "epochs_run",
    "cumulative_epochs",
    "fit_seconds",
    "load_seconds",
    "params",
    "peak_rss_mb",
    "model_bytes",
    "model_sha256",
    "status",
    "error",
    "unused",
]


def read_csv(path, space: Space | None = None) -> pd.DataFrame:
    """Read a trial table with the types it was written with: ids and errors as text (a hex
    id like 123e45678901 is not a number), integer hyperparameters as integers even where a
    conditional one leaves blanks."""
    frame = pd.read_csv(
        path,
        dtype={
            "trial_id": str,
            "parent": str,
            "bracket": str,
            "study": str,
            "error": str,
            "hyperparameters": str,
            "model_sha256": str,
            "unused": str,
            "fit_plan": str,
        },
        keep_default_na=False,
        na_values=[""],
    )
    for column in ("error", "unused"):
        if column in frame:
            frame[column] = frame[column].fillna("")
    if "round" in frame:
        frame["round"] = frame["round"].astype("Int64")
    for hp in space or ():
        if hp.type == "int" and hp.name in frame:
            frame[hp.name] = frame[hp.name].astype("Int64")
    return frame


def history_files(trials: pd.DataFrame, trials_csv) -> dict[str, str]:
    """Each trial's history.csv beside trials.csv: its own, or the mean over its fits (a
    configuration of several fits records the name of their plan, fit_plan)."""
    layout = Layout.of_trials_csv(trials_csv)
    plans = trials["fit_plan"] if "fit_plan" in trials else [None] * len(trials)
    return {
        tid: layout.history_of(tid, plan if isinstance(plan, str) and plan else None)
        for tid, plan in zip(trials["trial_id"], plans)
    }


def collect(
    strategy: str, membership: list, *, metrics_files: list[str], space: Space, replicate: int = 0
) -> pd.DataFrame:
    """One row per trial of `strategy`, in its order: [trial number, round, trial id, values,
    schedule, series] joined with each trial's metrics.csv (a series other than the one of a
    single-series strategy is a Hyperband bracket). The exact values ride along as JSON, since
    a CSV column loses types (an int column with blanks reads back as floats)."""
    records = {}
    for path in metrics_files:
        frame = read_csv(path, space)
        record = frame.iloc[0].to_dict()
        if pd.isna(record.get("cumulative_epochs", float("nan"))):  # a trial from before Hyperband
            record["cumulative_epochs"] = record["epochs_run"]
        for name in unused_names(record):  # the model never asked for it: no value of the trial's
            record[name] = None
        records[frame.loc[0, "trial_id"]] = record
    rows = [
        {
            "strategy": strategy,
            "replicate": replicate,
            "trial_number": number,
            "bracket": None if series == ALL else series,
            "round": round_,
            **records[tid],
            "parent": schedule.get("parent"),
            "hyperparameters": json.dumps(values),
        }
        for number, round_, tid, values, schedule, series in membership
    ]
    return pd.DataFrame(rows, columns=table_columns(space, rows))


def table_columns(space: Space, rows: list[dict] = ()) -> list[str]:
    """The table's columns; what else the trials recorded (the best value of each metric the
    model reports, best_<metric>) goes before the last two."""
    known = [
        "strategy",
        "replicate",
        "trial_number",
        "bracket",
        "round",
        "parent",
        "trial_id",
        *space.names,
        *RECORD_COLUMNS,
        "study",
        "hyperparameters",
    ]
    # (metrics.csv of trials trained before the schedule had its own field hold Hyperband's
    # bookkeeping as tuner/... columns)
    extra = list(dict.fromkeys(k for row in rows for k in row if k not in known and not k.startswith("tuner/")))
    # a configuration of several fits: its mean objective, their spread and number side by side
    spread = [k for k in SPREAD_COLUMNS if k in extra]
    at = known.index("objective_value") + 1
    known[at:at] = spread
    return known[:-2] + [k for k in extra if k not in spread] + known[-2:]


def strategy_table(*, strategy, membership, metrics_files, space_file, out, replicate: int = 0) -> pd.DataFrame:
    """Write one strategy's table (see collect) to `out`."""
    space = Space.from_json(Path(space_file).read_text())
    table = collect(strategy, membership, metrics_files=metrics_files, space=space, replicate=replicate)
    write_csv(out, table)
    return table


def with_compute(trials: pd.DataFrame) -> pd.DataFrame:
    """Number each strategy's trials in order (Hyperband's brackets come as separate tables) and
    add the compute each strategy had spent by the end of each trial: the epochs it trained
    and their fit seconds. A configuration two strategies proposed trained once, but each
    strategy would have paid for it, so each counts it."""
    trials = trials.copy()
    runs = trials.groupby(["strategy", "replicate"], sort=False)
    trials["trial_number"] = runs.cumcount() + 1
    trials["strategy_epochs"] = runs["epochs_run"].cumsum()
    trials["strategy_seconds"] = runs["fit_seconds"].cumsum().round(3)
    return trials


def best_so_far(group: pd.DataFrame, objective: Objective) -> pd.Series:
    """Best objective after each trial, in the strategy's order (failed trials change nothing)."""
    values = group["objective_value"].where(group["status"] == "completed")
    fill = -np.inf if objective.direction == "max" else np.inf
    running = values.fillna(fill).cummax() if objective.direction == "max" else values.fillna(fill).cummin()
    return running.replace([np.inf, -np.inf], np.nan)


def at_equal_compute(trials: pd.DataFrame, objective: Objective) -> tuple[int, pd.DataFrame]:
    """Each strategy's best objective within the epochs the thriftiest run (strategy and
    replicate) trained: its mean over the replicates, their standard deviation and range."""
    runs = trials.groupby(["strategy", "replicate"], sort=False)
    budget = int(runs["strategy_epochs"].max().min())
    per_run = []
    for (strategy, replicate), group in runs:
        within = group[group["strategy_epochs"] <= budget]
        best = best_so_far(within, objective).iloc[-1] if len(within) else np.nan
        per_run.append({"strategy": strategy, "replicate": replicate, "best": best, "trials": len(within)})
    per_run = pd.DataFrame(per_run)
    table = (
        per_run.groupby("strategy", sort=False)
        .agg(
            best=("best", "mean"),
            sd=("best", "std"),
            low=("best", "min"),
            high=("best", "max"),
            replicates=("best", "count"),
            trials=("trials", "mean"),
        )
        .reset_index()
    )
    return budget, table


def best_row(trials: pd.DataFrame, objective: Objective):
    """The best completed trial (the earliest on ties), or None."""
    done = completed(trials)
    if done.empty:
        return None
    # A stable sort keeps the earliest trial on ties, so the winner does not depend on timing.
    ordered = done.sort_values("objective_value", ascending=objective.direction == "min", kind="stable")
    return ordered.iloc[0]


def _entry(row) -> dict:
    return {
        "strategy": row["strategy"],
        "trial_id": row["trial_id"],
        "trial_number": int(row["trial_number"]),
        "replicate": int(row["replicate"]),
        "objective_value": float(row["objective_value"]),
        "objective_epoch": int(row["objective_epoch"]),
        "hyperparameters": json.loads(row["hyperparameters"]),
        # a configuration of several fits: the spread of their objectives, and how many
        **{k: (int(row[k]) if k == "fits" else float(row[k])) for k in SPREAD_COLUMNS if k in row and pd.notna(row[k])},
    }


def best_params(trials: pd.DataFrame, objective: Objective) -> dict:
    """What best_params.json holds: the objective, the best trial overall and per strategy."""
    overall = best_row(trials, objective)
    if overall is None:
        raise RuntimeError(
            "every trial failed, so there is no best configuration: see the error column of "
            "the tables in strategies/ and the trial logs in logs/trials/"
        )
    per_strategy = {}
    for strategy, group in trials.groupby("strategy", sort=False):
        row = best_row(group, objective)
        per_strategy[strategy] = None if row is None else _entry(row)
    return {
        "objective": {"name": objective.name, "direction": objective.direction},
        "overall": _entry(overall),
        "per_strategy": per_strategy,
    }


def aggregate(
    *, tables, space_file, objective: dict, trials_csv, best_json, journal, space_json, plan: dict, plan_file
) -> dict:
    """Every trial of every strategy: a trial two strategies proposed appears under both.

    `plan_file`, named by the plan, is written last and the other plans' markers removed, so
    that the aggregate is stale for any other plan, the one before included."""
    text = Path(space_file).read_text()
    space = Space.from_json(text)
    objective = objective_from(objective)
    trials = with_compute(pd.concat([read_csv(t, space) for t in tables], ignore_index=True))
    best = best_params(trials, objective)
    write_csv(trials_csv, trials)
    write_json(best_json, best)
    # each trial's history lies in its folder beside trials.csv
    write_journal(
        trials,
        space,
        objective,
        path=journal,
        histories=history_files(trials, trials_csv),
    )
    write_text(space_json, text)
    write_json(plan_file, plan)
    for other in Path(plan_file).parent.glob("*.json"):
        if other.name != Path(plan_file).name:
            other.unlink()
    return best
