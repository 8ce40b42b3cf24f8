"""Gather every trial of every strategy; find the best configuration per strategy and overall."""

from __future__ import annotations

import json
import platform
from importlib import metadata
from pathlib import Path

import pandas as pd

from snaketune.atomic import write_csv, write_json, write_text
from snaketune.config import Objective, objective_from
from snaketune.space import Space

RECORD_COLUMNS = ["objective", "objective_value", "objective_epoch", "epochs_run", "fit_seconds", "load_seconds",
                  "params", "peak_rss_mb", "status", "error"]
PACKAGES = ("tensorflow", "tensorflow-cpu", "keras", "keras-tuner", "snakemake", "numpy", "pandas")


def read_csv(path, space: Space | None = None) -> pd.DataFrame:
    """Read a trial table with the types it was written with: ids and errors as text (a hex
    id like 123e45678901 is not a number), integer hyperparameters as integers even where a
    conditional one leaves blanks."""
    frame = pd.read_csv(path, dtype={"trial_id": str, "study": str, "error": str, "hyperparameters": str},
                        keep_default_na=False, na_values=[""])
    if "error" in frame:
        frame["error"] = frame["error"].fillna("")
    if "round" in frame:
        frame["round"] = frame["round"].astype("Int64")
    for hp in space or ():
        if hp.type == "int" and hp.name in frame:
            frame[hp.name] = frame[hp.name].astype("Int64")
    return frame


def collect(strategy: str, membership: list, metrics_files: list[str], space: Space) -> pd.DataFrame:
    """One row per trial of `strategy`, in its order: [trial number, round, trial id, values]
    joined with each trial's metrics.csv. The exact values ride along as JSON, since a CSV
    column loses types (an int column with blanks reads back as floats)."""
    records = {}
    for path in metrics_files:
        frame = read_csv(path, space)
        records[frame.loc[0, "trial_id"]] = frame.iloc[0].to_dict()
    rows = [{"strategy": strategy, "trial_number": number, "round": round_, **records[tid],
             "hyperparameters": json.dumps(values)}
            for number, round_, tid, values in membership]
    columns = ["strategy", "trial_number", "round", "trial_id", *space.names, *RECORD_COLUMNS, "study",
               "hyperparameters"]
    return pd.DataFrame(rows, columns=columns)


def strategy_table(*, strategy, membership, metrics_files, space_file, out) -> pd.DataFrame:
    space = Space.from_json(Path(space_file).read_text())
    table = collect(strategy, membership, metrics_files, space)
    write_csv(out, table)
    return table


def completed(trials: pd.DataFrame) -> pd.DataFrame:
    return trials[(trials["status"] == "completed") & trials["objective_value"].notna()]


def best_row(trials: pd.DataFrame, objective: Objective):
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
        "objective_value": float(row["objective_value"]),
        "objective_epoch": int(row["objective_epoch"]),
        "hyperparameters": json.loads(row["hyperparameters"]),
    }


def best_params(trials: pd.DataFrame, objective: Objective) -> dict:
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


def versions() -> dict:
    found = {"python": platform.python_version()}
    for package in PACKAGES:
        try:
            found[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            pass
    return found


def summary(study: str, trials: pd.DataFrame, best: dict, objective: Objective) -> str:
    lines = [f"# Study `{study}`", "",
             f"Objective: **{objective.name}** ({'maximised' if objective.direction == 'max' else 'minimised'}), "
             "the best value over a trial's epochs.", ""]
    overall = best["overall"]
    lines += [f"**Best overall:** {overall['objective_value']:.4f} by `{overall['strategy']}` "
              f"(trial {overall['trial_number']}, id `{overall['trial_id']}`, epoch {overall['objective_epoch']})", ""]
    lines += ["| hyperparameter | value |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in overall["hyperparameters"].items()]
    lines += ["", "## Per strategy", "",
              "| strategy | trials | failed | best | best trial | trial of best | training time (s) |",
              "|---|---|---|---|---|---|---|"]
    for strategy, group in trials.groupby("strategy", sort=False):
        entry = best["per_strategy"].get(strategy)
        failed = int((group["status"] != "completed").sum())
        seconds = float(group["fit_seconds"].sum())
        if entry is None:
            lines.append(f"| {strategy} | {len(group)} | {failed} | - | - | - | {seconds:.1f} |")
        else:
            lines.append(f"| {strategy} | {len(group)} | {failed} | {entry['objective_value']:.4f} | "
                         f"`{entry['trial_id']}` | {entry['trial_number']} | {seconds:.1f} |")
    unique = trials.drop_duplicates("trial_id")
    lines += ["", f"{len(unique)} distinct trials trained in {unique['fit_seconds'].sum():.1f} s of fitting "
              f"({len(trials) - len(unique)} configurations were proposed by more than one strategy and trained once).",
              "", "## Software", ""]
    lines += [f"- {k} {v}" for k, v in versions().items()]
    return "\n".join(lines) + "\n"


def aggregate(*, tables, space_file, objective: dict, study: str, trials_csv, best_json, summary_md) -> dict:
    """Every trial of every strategy: a trial two strategies proposed appears under both."""
    space = Space.from_json(Path(space_file).read_text())
    objective = objective_from(objective)
    trials = pd.concat([read_csv(t, space) for t in tables], ignore_index=True)
    best = best_params(trials, objective)
    write_csv(trials_csv, trials)
    write_json(best_json, best)
    write_text(summary_md, summary(study, trials, best, objective))
    return best
