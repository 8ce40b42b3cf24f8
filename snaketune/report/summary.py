"""summary.md: the study in words and tables, from the trial table, the best parameters and,
where the final model was trained, its test metrics."""

from __future__ import annotations

import json
import platform
from importlib import metadata
from pathlib import Path

import pandas as pd

from snaketune.core.atomic import write_text
from snaketune.report.aggregate import at_equal_compute, read_csv
from snaketune.report.analysis import completed, importances, pareto_front, smallest_near_best
from snaketune.search.objective import Objective, objective_from
from snaketune.search.space import Space

PACKAGES = ("tensorflow", "tensorflow-cpu", "keras", "keras-tuner", "optuna", "snakemake", "numpy", "pandas")


def resolution(objective: Objective, val_samples: int | None) -> float:
    """The smallest difference the validation set can show: one sample in `val_samples` for an
    accuracy; for any other metric, none."""
    if val_samples and objective.name.endswith("accuracy"):
        return 1.0 / val_samples
    return 0.0


def ties(best: dict, step: float) -> list[str]:
    """The strategies whose best is within one validation sample (`step`) of the overall best:
    one image more or fewer in 12,000 tells no strategy from another. (The 1 % margin absorbs
    float32 rounding of the accuracies Keras reports.)"""
    top = best["overall"]["objective_value"]
    return [
        s
        for s, entry in best["per_strategy"].items()
        if entry is not None and abs(entry["objective_value"] - top) <= step * 1.01 + 1e-12
    ]


def versions() -> dict:
    found = {"python": platform.python_version()}
    for package in PACKAGES:
        try:
            found[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            pass
    return found


def compute_section(trials: pd.DataFrame, objective: Objective) -> list[str]:
    """The strategies compared at equal compute, in a table and in words."""
    if trials["strategy"].nunique() < 2:
        return []
    budget, table = at_equal_compute(trials, objective)
    replicates = int(table["replicates"].max())
    over = (
        f", mean over {replicates} replicates (seeds) ± standard deviation, and their range" if replicates > 1 else ""
    )
    lines = [
        "",
        "## At equal compute",
        "",
        f"Best {objective.name} of each strategy within **{budget} epochs** of training, the most "
        f"that every strategy trained{' in every replicate' if replicates > 1 else ''} (a promoted "
        f"Hyperband trial counts only the epochs it added){over}:",
        "",
        "| strategy | trials within the budget | best within the budget |",
        "|---|---|---|",
    ]
    lines += [f"| {r.strategy} | {r.trials:.3g} | {_spread(r)} |" for r in table.itertuples()]
    ranked = table.dropna(subset=["best"]).sort_values("best", ascending=objective.direction == "min", kind="stable")
    if len(ranked) >= 2:
        first, second = ranked.iloc[0], ranked.iloc[1]
        gap = abs(first.best - second.best)
        words = (
            f"Within {budget} epochs, **{first.strategy}** reached the best {objective.name}"
            f"{' on average' if replicates > 1 else ''}, {_spread(first, False)}, ahead of {second.strategy} "
            f"({_spread(second, False)}) by {gap:.4f}."
        )
        if replicates > 1:
            noise = max(first.sd, second.sd)
            words += (
                " That gap is larger than the spread between seeds."
                if gap > noise
                else " That gap is within the spread between seeds: over this many replicates the two "
                "are not told apart."
            )
        lines += ["", words]
    return lines


def _trial(entry: dict, trials: pd.DataFrame) -> str:
    """A trial's number, and its replicate where there are several."""
    if trials["replicate"].nunique() > 1:
        return f"{entry['trial_number']} of replicate {entry['replicate']}"
    return str(entry["trial_number"])


def _spread(row, with_range: bool = True) -> str:
    if pd.isna(row.best):
        return "-"
    if row.replicates < 2:
        return f"{row.best:.4f}"
    text = f"{row.best:.4f} ± {row.sd:.4f}"
    return f"{text} ({row.low:.4f} to {row.high:.4f})" if with_range else text


def spread_lines(trials: pd.DataFrame, overall: dict, objective: Objective) -> list[str]:
    """Where each configuration is the mean of several fits: the winner's mean ± standard
    deviation, and whether the runner-up configuration is within one standard deviation of it
    (then the fits cannot tell the two apart)."""
    if "fits" not in overall:
        return []
    done = completed(trials).drop_duplicates("trial_id")
    done = done.sort_values("objective_value", ascending=objective.direction == "min", kind="stable")
    mean, sd = overall["objective_value"], overall["objective_std"]
    text = f"Over its {overall['fits']} fits: {mean:.4f} ± {sd:.4f} (mean ± standard deviation)."
    others = done[done["trial_id"] != overall["trial_id"]]
    if not others.empty:
        runner = others.iloc[0]
        within = abs(float(runner["objective_value"]) - mean) <= sd
        text += (
            f" The runner-up, trial `{runner['trial_id']}` ({float(runner['objective_value']):.4f} ± "
            f"{float(runner['objective_std']):.4f}), is "
            + (
                "within one standard deviation of it: its fits do not tell the two apart."
                if within
                else "more than one standard deviation behind it."
            )
        )
    return [text, ""]


def summary(
    study: str,
    trials: pd.DataFrame,
    best: dict,
    *,
    objective: Objective,
    space: Space,
    task: dict | None = None,
    final: dict | None = None,
    val_samples: int | None = None,
) -> str:
    """summary.md's text: the final model's test figures, the best trial, the strategies at
    equal compute, importances and Pareto fronts."""
    lines = [f"# Study `{study}`", ""]
    if final:
        tested = {k[len("test_") :]: v for k, v in final.items() if k.startswith("test_") and k != "test_samples"}
        main = objective.name.removeprefix("val_")
        headline = main if main in tested else next(iter(tested), None)
        if headline is not None:
            others = ", ".join(f"{k} {v:.4g}" for k, v in tested.items() if k != headline)
            lines += [
                f"**Test {headline}: {tested[headline]:.4f}** on {final.get('test_samples', 0):,} test samples"
                f"{f' ({others})' if others else ''}: trial `{final['trial_id']}` retrained on training + "
                f"validation data for {final['epochs']} epochs, tested once.",
                "",
            ]
    if task:
        lines += [f"Task: **{task['name'] or 'several outputs'}** ({task['how']}).", ""]
    lines += [
        f"Objective: **{objective.name}** ({'maximised' if objective.direction == 'max' else 'minimised'}), "
        "the best value over a trial's epochs.",
        "",
    ]
    overall = best["overall"]
    step = resolution(objective, val_samples)
    tied = ties(best, step)
    by = f"`{overall['strategy']}`"
    if len(tied) > 1:
        within = f"within one validation sample of {val_samples}" if step else "equal"
        by += f"; {', '.join(f'`{s}`' for s in tied)} tie ({within}), so no strategy wins here"
    lines += [
        f"**Best overall:** {overall['objective_value']:.4f} by {by} "
        f"(trial {_trial(overall, trials)}, id `{overall['trial_id']}`, epoch {overall['objective_epoch']})",
        "",
    ]
    lines += spread_lines(trials, overall, objective)
    lines += ["| hyperparameter | value |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in overall["hyperparameters"].items()]
    lines += [
        "",
        "## Per strategy",
        "",
        "| strategy | trials | failed | best | best trial | trial of best | training time (s) |",
        "|---|---|---|---|---|---|---|",
    ]
    for strategy, group in trials.groupby("strategy", sort=False):
        entry = best["per_strategy"].get(strategy)
        failed = int((group["status"] != "completed").sum())
        seconds = float(group["fit_seconds"].sum())
        if entry is None:
            lines.append(f"| {strategy} | {len(group)} | {failed} | - | - | - | {seconds:.1f} |")
        else:
            lines.append(
                f"| {strategy} | {len(group)} | {failed} | {entry['objective_value']:.4f} | "
                f"`{entry['trial_id']}` | {_trial(entry, trials)} | {seconds:.1f} |"
            )
    lines += compute_section(trials, objective)
    lines += importance_section(trials, space, objective)
    lines += pareto_section(trials, objective)
    unique = trials.drop_duplicates("trial_id")
    shared = len(trials) - len(unique)
    lines += [
        "",
        f"{len(unique)} distinct trials trained in {unique['fit_seconds'].sum():.1f} s of fitting"
        + (
            f"; {shared} of the strategies' proposals were configurations another strategy had proposed "
            "too, each trained once."
            if shared
            else "."
        ),
        "",
        "## Software",
        "",
    ]
    lines += [f"- {k} {v}" for k, v in versions().items()]
    return "\n".join(lines) + "\n"


def importance_section(trials: pd.DataFrame, space: Space, objective: Objective) -> list[str]:
    """The summary's lines on hyperparameter importance (Optuna's fANOVA), none if it cannot be computed."""
    table = importances(trials, space, objective)
    if table.empty:
        return []
    lines = [
        "",
        "## Hyperparameter importance",
        "",
        f"How much of the variation of {objective.name} each hyperparameter explains (Optuna's fANOVA over "
        "the completed trials; each column sums to 1):",
        "",
        "| hyperparameter | " + " | ".join(table.columns) + " |",
        "|---" * (len(table.columns) + 1) + "|",
    ]
    for name, row in table.iterrows():
        lines.append(f"| {name} | " + " | ".join("-" if pd.isna(v) else f"{v:.2f}" for v in row) + " |")
    return lines


def pareto_section(trials: pd.DataFrame, objective: Objective) -> list[str]:
    """The summary's lines on the trials that no other beats on both the objective and a cost."""
    lines = ["", "## Pareto fronts", ""]
    for cost, label in (("params", "parameters"), ("fit_seconds", "training seconds")):
        front = pareto_front(trials, objective, cost)
        if front.empty:
            return []
        items = ", ".join(
            f"`{r.trial_id}` ({r.objective_value:.4f}, {getattr(r, cost):,.{0 if cost == 'params' else 1}f})"
            for r in front.itertuples()
        )
        lines.append(f"- {objective.name} against {label}, cheapest first: {items}")
    small = smallest_near_best(trials, objective)
    lines += [
        "",
        f"The smallest model within 0.1 % of the best {objective.name}: trial `{small['trial_id']}` "
        f"({small['strategy']}), {small['objective_value']:.4f} with {int(small['params']):,} parameters.",
    ]
    return lines


def write_summary(
    *,
    study,
    trials_csv,
    best_json,
    space_file,
    objective: dict,
    out,
    task: dict | None = None,
    final_json=None,
    data_info=None,
) -> str:
    """The `summary` job: summary.md from the study's files."""
    space = Space.from_json(Path(space_file).read_text())
    trials = read_csv(trials_csv, space)
    final = json.loads(Path(final_json).read_text()) if final_json else None
    info = json.loads(Path(data_info).read_text()) if data_info and Path(data_info).exists() else {}
    text = summary(
        study,
        trials,
        json.loads(Path(best_json).read_text()),
        objective=objective_from(objective),
        space=space,
        task=task,
        final=final,
        val_samples=(info.get("sizes") or {}).get("val"),
    )
    write_text(out, text)
    return text
