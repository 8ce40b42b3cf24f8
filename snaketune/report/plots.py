"""Comparison plots of a study's trials, one PNG each."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from snaketune.core.atomic import atomic_path  # noqa: E402
from snaketune.report.aggregate import best_so_far, history_files, read_csv  # noqa: E402
from snaketune.report.analysis import completed  # noqa: E402
from snaketune.search.objective import Objective, objective_from  # noqa: E402
from snaketune.search.space import Space  # noqa: E402


def _save(fig, path) -> None:
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)


def _colours(strategies) -> dict:
    cycle = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    return {s: cycle[i % len(cycle)] for i, s in enumerate(strategies)}


# x axis of the best-so-far plots: (column of trials.csv, axis label, title)
BY = {
    "trial": ("trial_number", "trial", "trial"),
    "epochs": ("strategy_epochs", "epochs trained by the strategy so far", "compute (epochs trained)"),
    "time": ("strategy_seconds", "cumulative training time (s)", "compute (training time)"),
}


def mean_curve(runs: list[pd.DataFrame], column: str, objective: Objective):
    """The replicates' best-so-far step curves on their common x values, from where every run
    has a result to where the shortest run ends: x, mean, and mean ± standard deviation."""
    start = max(run.loc[best_so_far(run, objective).notna(), column].min() for run in runs)
    end = min(run[column].max() for run in runs)
    x = np.unique(np.concatenate([run[column].to_numpy(dtype=float) for run in runs]))
    x = x[(x >= start) & (x <= end)]
    # each run's best so far at each x: its value after its last trial at or before x
    curves = np.array(
        [
            best_so_far(run, objective).to_numpy(dtype=float)[
                np.searchsorted(run[column].to_numpy(dtype=float), x, side="right") - 1
            ]
            for run in runs
        ]
    )
    mean, sd = curves.mean(axis=0), curves.std(axis=0, ddof=1)
    return x, mean, mean - sd, mean + sd


def informative_range(trials, objective):
    """The objective's range worth seeing: from the median completed trial to the best, with
    a margin. Below the median lie the trials that failed to learn, whose scores (0.1 where
    0.98 is reached) would flatten the differences that matter."""
    values = completed(trials)["objective_value"].astype(float)
    if values.empty:
        return None
    median, best = values.median(), values.max() if objective.direction == "max" else values.min()
    low, high = sorted((median, best))
    margin = (high - low) * 0.08 or abs(high) * 0.01 or 0.01
    return low - margin, high + margin


def _mark_failed(ax, trials, column, objective):
    """Failed trials as crosses on the axis' lower (or, minimised, upper) edge."""
    failed = trials[trials["status"] != "completed"]
    if failed.empty:
        return
    edge = ax.get_ylim()[0 if objective.direction == "max" else 1]
    ax.scatter(
        failed[column],
        [edge] * len(failed),
        marker="x",
        color="black",
        s=30,
        clip_on=False,
        label="failed trial",
        zorder=3,
    )


def plot_best_so_far(trials, objective, path, by: str):
    """Each strategy's best objective so far, by trial, by epochs trained or by fit time (`by`)."""
    column, xlabel, title = BY[by]
    fig, ax = plt.subplots(figsize=(7, 4.5))
    colours = _colours(trials["strategy"].unique())
    replicated = trials["replicate"].nunique() > 1
    for strategy, group in trials.groupby("strategy", sort=False):
        runs = [run.sort_values("trial_number") for _, run in group.groupby("replicate", sort=True)]
        colour = colours[strategy]
        if len(runs) == 1:
            run = runs[0]
            ax.step(run[column], best_so_far(run, objective), where="post", label=strategy, color=colour, lw=2)
            ax.scatter(run[column], run["objective_value"], color=colour, alpha=0.35, s=14)
        else:
            x, mean, low, high = mean_curve(runs, column, objective)
            ax.step(x, mean, where="post", label=f"{strategy} ({len(runs)} seeds)", color=colour, lw=2)
            ax.fill_between(x, low, high, step="post", color=colour, alpha=0.2, lw=0)
    shown = informative_range(trials, objective)
    if shown:
        ax.set_ylim(*shown)
    _mark_failed(ax, trials, column, objective)
    if by != "time":
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel(xlabel)
    ax.set_ylabel(f"best {objective.name} so far" + (", mean ± sd over seeds" if replicated else ""))
    ax.set_title(f"Best {objective.name} so far, by {title}")
    ax.grid(alpha=0.3)
    ax.legend()
    _save(fig, path)


def plot_objective_vs_hyperparameters(trials, objective, space: Space, path):
    """The objective of each trial against each hyperparameter, one panel each (with error bars
    of one standard deviation where each is the mean of several fits)."""
    names = [hp.name for hp in space if hp.type != "fixed" and hp.name in trials]
    names = names or ["trial_number"]
    cols = min(3, len(names))
    rows = int(np.ceil(len(names) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.4 * rows), squeeze=False)
    colours = _colours(trials["strategy"].unique())
    done = completed(trials)
    for ax, name in zip(axes.flat, names):
        hp = space[name] if name in space else None
        for strategy, group in done.groupby("strategy", sort=False):
            x = group[name]
            if hp is not None and hp.type in ("choice", "boolean"):
                order = [str(v) for v in (hp.values if hp.type == "choice" else (False, True))]
                x = x.astype(str).map({v: i for i, v in enumerate(order)})
                ax.set_xticks(range(len(order)), order)
            ax.scatter(x, group["objective_value"], label=strategy, color=colours[strategy], alpha=0.7, s=22)
            if "objective_std" in group:  # each point the mean of a configuration's fits: ± their sd
                ax.errorbar(
                    x,
                    group["objective_value"],
                    yerr=group["objective_std"],
                    fmt="none",
                    ecolor=colours[strategy],
                    alpha=0.5,
                    capsize=2,
                )
        if hp is not None and hp.sampling == "log" and hp.type in ("int", "float"):
            ax.set_xscale("log")
        elif hp is not None and hp.type == "int" or name == "trial_number":
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel(name)
        ax.set_ylabel(objective.name)
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(names) :]:
        ax.set_visible(False)
    axes.flat[0].legend(fontsize=8)
    fig.suptitle(f"{objective.name} against each hyperparameter")
    _save(fig, path)


def plot_learning_curves(trials, objective, *, histories: dict, path, top: int = 5):
    """The objective and the training loss per epoch of the `top` trials (`histories`: trial id
    to its history.csv)."""
    done = completed(trials).drop_duplicates("trial_id")
    best = done.sort_values("objective_value", ascending=objective.direction == "min", kind="stable").head(top)
    fig, (ax_obj, ax_loss) = plt.subplots(1, 2, figsize=(11, 4.2))
    for _, row in best.iterrows():
        history = pd.read_csv(histories[row["trial_id"]])
        label = f"{row['trial_id'][:6]} ({row['strategy']}, {row['objective_value']:.4f})"
        # a HyperModel's fit may return its objective once, not per epoch
        if objective.name in history:
            ax_obj.plot(history["epoch"], history[objective.name], marker="o", label=label)
        if "loss" in history:
            ax_loss.plot(history["epoch"], history["loss"], marker="o", label=label)
    if not ax_obj.lines:
        ax_obj.text(
            0.5,
            0.5,
            f"{objective.name} is not reported per epoch\n(the model's fit returns it once)",
            ha="center",
            va="center",
            transform=ax_obj.transAxes,
        )
    ax_obj.set_ylabel(objective.name)
    ax_loss.set_ylabel("training loss")
    for ax in (ax_obj, ax_loss):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
    if ax_obj.lines:
        ax_obj.legend(fontsize=8)
    fig.suptitle(f"Learning curves of the top {len(best)} trials")
    _save(fig, path)


def plot_distribution(trials, objective, path):
    """The objective's distribution per strategy."""
    done = completed(trials)
    strategies = list(trials["strategy"].unique())
    data = [done.loc[done["strategy"] == s, "objective_value"].to_numpy() for s in strategies]
    fig, ax = plt.subplots(figsize=(7, 4.5))
    ax.boxplot([d if len(d) else [np.nan] for d in data], tick_labels=strategies, showfliers=False)
    rng = np.random.default_rng(0)  # jitter only; fixed so the figure is reproducible
    colours = _colours(strategies)
    for i, (strategy, values) in enumerate(zip(strategies, data), start=1):
        ax.scatter(i + rng.uniform(-0.12, 0.12, len(values)), values, color=colours[strategy], alpha=0.7, s=18)
    ax.set_ylabel(objective.name)
    ax.set_title(f"{objective.name} of completed trials, per strategy")
    ax.grid(alpha=0.3, axis="y")
    _save(fig, path)


def plot_importance(importance: pd.DataFrame, objective, path):
    """Hyperparameter importance over all trials and per strategy (snaketune.report.analysis)."""
    fig, ax = plt.subplots(figsize=(7, 0.5 * max(len(importance), 2) + 1.8))
    if importance.empty:
        ax.text(0.5, 0.5, "too few completed trials, or nothing varied", ha="center", va="center")
        ax.set_axis_off()
    else:
        order = importance["all"].fillna(0).sort_values().index if "all" in importance else importance.index
        importance = importance.loc[order]
        width = 0.8 / len(importance.columns)
        y = np.arange(len(importance))
        for i, column in enumerate(importance.columns):
            ax.barh(y + i * width - 0.4 + width / 2, importance[column].fillna(0), height=width, label=column)
        ax.set_yticks(y, importance.index)
        ax.set_xlabel("importance (fANOVA; each column sums to 1)")
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3, axis="x")
    ax.set_title(f"Hyperparameter importance for {objective.name}")
    _save(fig, path)


def plot_parallel_coordinate(study, objective, path):
    """Every completed trial as a line across the hyperparameters, coloured by the objective
    (Optuna's own plot)."""
    import warnings

    import optuna

    with warnings.catch_warnings():  # Optuna marks its matplotlib plots experimental
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        ax = optuna.visualization.matplotlib.plot_parallel_coordinate(study, target_name=objective.name)
    fig = ax.figure
    fig.set_size_inches(max(7, 1.6 * (len(study.best_params) + 1)), 4.8)
    _save(fig, path)


def plot_pareto(trials, objective, path):
    """The objective against parameter count and against training time, each Pareto front
    drawn (snaketune.report.analysis.pareto_front)."""
    from snaketune.report.analysis import pareto_front

    done = completed(trials).drop_duplicates("trial_id")
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.3))
    for ax, (cost, label) in zip(axes, [("params", "parameters"), ("fit_seconds", "training time (s)")]):
        ax.scatter(done[cost], done["objective_value"], color="grey", alpha=0.5, s=18, label="trial")
        front = pareto_front(trials, objective, cost)
        ax.step(front[cost], front["objective_value"], where="post", color="C3", lw=1.5)
        ax.scatter(front[cost], front["objective_value"], color="C3", s=30, label="Pareto-optimal", zorder=3)
        shown = informative_range(trials, objective)
        if shown:
            ax.set_ylim(*shown)
        ax.set_xscale("log")
        ax.set_xlabel(label)
        ax.set_ylabel(objective.name)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.suptitle(f"{objective.name} against model size and training time")
    _save(fig, path)


def plot_all(*, trials_csv, space_file, objective: dict, outputs: list[str]) -> None:
    """Every comparison plot, each to the output of its name (snaketune.core.layout.PLOTS)."""
    space = Space.from_json(Path(space_file).read_text())
    trials = read_csv(trials_csv, space)
    objective = objective_from(objective)
    by_name = {Path(p).stem: p for p in outputs}
    plot_best_so_far(trials, objective, by_name["best_so_far_by_trial"], by="trial")
    plot_best_so_far(trials, objective, by_name["best_so_far_by_epochs"], by="epochs")
    plot_best_so_far(trials, objective, by_name["best_so_far_by_time"], by="time")
    plot_objective_vs_hyperparameters(trials, objective, space, by_name["objective_vs_hyperparameters"])
    # each trial's history lies in its folder beside trials.csv, written by the same job as
    # the metrics that trials.csv was built from
    histories = history_files(trials, trials_csv)
    plot_learning_curves(trials, objective, histories=histories, path=by_name["learning_curves_top5"])
    plot_distribution(trials, objective, by_name["objective_distribution"])
    from snaketune.report.analysis import importances, optuna_study

    plot_importance(importances(trials, space, objective), objective, by_name["param_importances"])
    plot_parallel_coordinate(
        optuna_study(trials.drop_duplicates("trial_id"), space, objective), objective, by_name["parallel_coordinate"]
    )
    plot_pareto(trials, objective, by_name["pareto_front"])
