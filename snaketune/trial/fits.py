"""Several fits of one configuration: Keras Tuner's executions_per_trial, and k-fold
cross-validation, each fit a job of its own.

A configuration (a trial id: its values and training settings) is fitted once per execution
and, with `training.folds: k`, once per fold of each execution. Each fit writes what a trial
writes (model.keras, history.csv, metrics.csv) in a folder of its own under the trial's; the
configuration's record, which the strategies, the tables and the report read, is the mean
over its fits (`combine`), with their standard deviation and number, under a name that says
over which fits (`plan_name`): raising the executions from 2 to 3 trains the third and
combines anew; changing k trains every fold of the new k, and the other k's fits stay.

The first execution of a study without folds is the configuration's own trial, in the trial's
own folder: with the same seed it is the same fit, so a study that had one fit per
configuration keeps it. Every other execution trains with a seed derived from the trial's.
"""

from __future__ import annotations

import hashlib
import math
import re
import statistics
from dataclasses import dataclass

_NAME = re.compile(r"^(?:fold_(\d+)_of_(\d+))?(?:_?execution_(\d+))?$")


@dataclass(frozen=True)
class Fit:
    """One fit of a configuration: its execution (0, 1, ...) and, with k-fold
    cross-validation, its fold (0 .. folds-1) of `folds`."""

    execution: int = 0
    fold: int | None = None
    folds: int | None = None

    @property
    def own_folder(self) -> bool:
        """The configuration's single fit, which trains in the trial's own folder."""
        return self.execution == 0 and self.folds is None

    @property
    def name(self) -> str:
        """Its folder's name under the trial's (fold_2_of_5, execution_1, fold_2_of_5_execution_1)."""
        parts = [f"fold_{self.fold}_of_{self.folds}"] if self.folds else []
        if self.execution or not parts:
            parts.append(f"execution_{self.execution}")
        return "_".join(parts)

    @classmethod
    def from_name(cls, name: str) -> Fit:
        """The fit a folder name stands for (`name` as Fit.name writes it)."""
        match = _NAME.match(name)
        if not match or not name or (match.group(1) is None and match.group(3) is None):
            raise ValueError(f"not a fit's name: {name!r}")
        fold, folds, execution = match.groups()
        fit = cls(int(execution or 0), None if fold is None else int(fold), None if folds is None else int(folds))
        if fit.name != name or (fit.folds is not None and not 0 <= fit.fold < fit.folds):
            raise ValueError(f"not a fit's name: {name!r}")
        return fit

    def seed(self, seed: int) -> int:
        """The seed this fit trains with: the trial's for the first execution (every fold of
        it), else one derived from the trial's and the execution's number."""
        if self.execution == 0:
            return seed
        digest = hashlib.sha256(f"{seed}:execution:{self.execution}".encode()).hexdigest()
        return int(digest[:8], 16) % (2**31 - 1)


def fits(executions: int = 1, folds: int | None = None) -> list[Fit]:
    """Every fit of a configuration, in order: folds within executions."""
    return [Fit(e, f, folds) for e in range(executions) for f in (range(folds) if folds else [None])]


def plan_name(executions: int = 1, folds: int | None = None) -> str | None:
    """The name of a configuration's record over these fits (folds_5, executions_3,
    folds_5_executions_2); None for a single fit, whose record is the trial's own."""
    if executions == 1 and not folds:
        return None
    return "_".join(([f"folds_{folds}"] if folds else []) + ([f"executions_{executions}"] if executions > 1 else []))


# What a configuration's record adds to a trial's.
SPREAD_COLUMNS = ("objective_std", "fits")


def combine(records: list[dict], names: list[str], direction: str) -> dict:
    """The configuration's record from its fits' (metrics.csv rows, as read): the objective's
    mean over the fits, as Keras Tuner averages its executions, with their standard deviation
    and number; the compute they spent, summed. A failed fit fails the configuration, as a
    failed trial does, naming the fit. `names`: the fits' names, for that message."""
    first = records[0]
    failed = [(name, r) for name, r in zip(names, records) if r.get("status") != "completed"]
    values = [float(r["objective_value"]) for r in records if r.get("status") == "completed"]
    record = {k: v for k, v in first.items() if k != "fit"}
    if failed:
        name, why = failed[0]
        more = f" (and {len(failed) - 1} more of {len(records)} fits)" if len(failed) > 1 else ""
        record.update(status="failed", error=f"fit {name}: {why.get('error') or why.get('status')}{more}")
        record.update(objective_value=math.nan, objective_std=math.nan)
    else:
        record.update(
            objective_value=statistics.fmean(values),
            objective_std=statistics.stdev(values) if len(values) > 1 else 0.0,
        )

    def numbers(column):
        return [float(r[column]) for r in records if r.get(column) not in (None, "")]

    def plain(value: float):
        return int(value) if float(value).is_integer() else value

    for column in ("epochs_run", "fit_seconds", "load_seconds"):
        record[column] = plain(round(sum(numbers(column)), 4))
    for column in ("cumulative_epochs", "params", "peak_rss_mb"):
        record[column] = plain(max(numbers(column), default=0))
    epochs = numbers("objective_epoch")
    record["objective_epoch"] = round(statistics.fmean(epochs)) if epochs else 0
    for column in first:
        if column.startswith("best_"):
            best = numbers(column)
            record[column] = statistics.fmean(best) if best else math.nan
    record.update(model_bytes=0, model_sha256="", fits=len(records))
    return record


def write_record(
    *, metrics: list[str], histories: list[str], names: list[str], plan: str, direction: str, out_metrics, out_history
) -> dict:
    """The `combine_fits` job: the configuration's metrics.csv (`combine`, with the name of its
    fits' plan) and history.csv (each epoch's mean over the fits that reached it)."""
    import pandas as pd

    from snaketune.core.atomic import write_csv
    from snaketune.trial.outcome import read_record

    record = combine([read_record(path) for path in metrics], names, direction)
    record["fit_plan"] = plan
    write_csv(out_metrics, pd.DataFrame([record]))
    frames = [pd.read_csv(path) for path in histories]
    frames = [f for f in frames if not f.empty]
    if frames:
        history = pd.concat(frames).groupby("epoch", as_index=False).mean(numeric_only=True)
    else:
        history = pd.DataFrame(columns=["epoch", "seconds"])
    write_csv(out_history, history)
    return record
