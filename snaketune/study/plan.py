"""The study's plan as Snakemake sees it: which trials each strategy asks for, and where files go.

Runs while the DAG is built (never imports TensorFlow). Rounds that need no history (grid,
random, a Hyperband bracket's first) follow from the search space alone; the others from the
round files their checkpoints write. A trial is named by `identity.trial_id` of its values,
its schedule and the training settings, so the same configuration asked for by two
strategies is one job, and its values can always be looked up again from the space and the
round files on disk (as a cluster job re-parsing the workflow must).

The plan also owns the traversal that the rules' input and params functions (rules/common.smk)
ask for: which trials and round files a table, a round and a trial job need. It is plain
Python: Snakemake's checkpoints reach it as a callable (`await_round`) that returns a round
file's path once it is written, so it runs, and is tested, without Snakemake.
"""

from __future__ import annotations

import glob
import json
import os
from collections.abc import Callable
from pathlib import Path

from snaketune.core.identity import DATA_LAYOUT, DISCOVERY, FITS_KEY, ONE_HOT_TARGETS, digest, trial_id
from snaketune.core.layout import RESULTS, Layout
from snaketune.search.schedule import identity_values
from snaketune.search.space import Space
from snaketune.search.strategies import ALL, Proposal, Strategy, make
from snaketune.study.checks import check_grid
from snaketune.study.config import Study
from snaketune.trial.fits import Fit
from snaketune.trial.outcome import read_record

# await_round(path, strategy=, key=, series=, round=): the path of a round file once its
# checkpoint has written it (in the workflow: raises until then, so that Snakemake waits)
AwaitRound = Callable[..., str]


class NotInPlan(ValueError):
    """A path asked for that the study, as configured now, does not have."""


class Plan:
    """The plan of replicate 0 (the study as configured); `replicas` holds one plan per
    replicate, all sharing one registry of trials."""

    def __init__(self, study: Study, root: str = RESULTS, *, replicate: int = 0, main: Plan | None = None):
        self.replicate = replicate
        self.study = study.replicate(replicate)
        self.paths = Layout.of_study(study.name, root)
        self.out = self.paths.out
        self.settings = self.study.training_settings()
        self._space_cache: tuple | None = None
        self._proposed: dict[tuple, list[str]] = {}  # rounds that need no history
        self._rounds: dict[str, tuple] = {}  # round files read, by path
        if main is None:
            self._values: dict[str, dict] = {}
            self._schedules: dict[str, dict] = {}
            self._settings: dict[str, dict] = {}
            self.replicas = [self]
            self.replicas += [Plan(study, root, replicate=r, main=self) for r in range(1, study.replicates)]
        else:
            self._values, self._schedules = main._values, main._schedules
            self._settings, self.replicas = main._settings, main.replicas

    # -- paths ----------------------------------------------------------------------------
    # Everything the workflow derives lives under a key: a digest of whatever decides its
    # content, computed from the config alone while the workflow is parsed. A changed plan
    # therefore shows as new paths, which Snakemake sees under every rerun trigger (`mtime`
    # too, and without its .snakemake/ metadata), and a changed-back plan finds its old files.
    # How a user's model's space is discovered; a new way is discovered anew (a rule of
    # snaketune.core.identity).
    DISCOVERY = DISCOVERY

    @property
    def space_key(self) -> str:
        """What names the space: the model, the declared space and how a user's model is discovered."""
        decides = {"model": self.settings["model"], "space": self.study.config["space"]}
        if self.settings["model"].get("hypermodel"):  # its fit is tried on the data
            decides["data"] = self.settings["data"]
        if self.settings["model"].get("hypermodel") or self.settings["model"].get("build_model"):
            decides["discovery"] = self.DISCOVERY
        return digest(decides, 8)

    @property
    def space_file(self) -> str:
        return self.paths.space_file(self.space_key)

    # The layout `data` writes (snaketune.data.prepared.prepare): a folder of another layout is
    # not reused (a rule of snaketune.core.identity).
    DATA_LAYOUT = DATA_LAYOUT

    @property
    def data_key(self) -> str:
        """What names the prepared data: its settings and the layout it is written in."""
        decides = {"layout": self.DATA_LAYOUT, **self.settings["data"]}
        if (self.study.data_summary or {}).get("one_hot"):
            decides.update(ONE_HOT_TARGETS)
        return digest(decides, 8)

    @property
    def data_dir(self) -> str:
        return self.paths.data_dir(self.data_key)

    def trial_file(self, tid: str, name: str) -> str:
        """One of a trial's files (snaketune.core.layout.TRIAL_FILES)."""
        return self.paths.trial_file(tid, name)

    # -- several fits per configuration (snaketune.trial.fits) ------------------------------
    @property
    def fit_plan(self) -> str | None:
        """The name of a configuration's record over its fits; None for a single fit."""
        return self.study.fit_plan

    def record_file(self, tid: str, name: str = "metrics.csv") -> str:
        """A configuration's record (metrics.csv, history.csv) as the strategies and the tables
        read it: its single fit's, or the mean over its fits."""
        plan = self.fit_plan
        return self.trial_file(tid, name) if plan is None else self.paths.record_file(tid, plan, name)

    def fit_file(self, tid: str, fit: Fit, name: str) -> str:
        """One of the files of a fit of configuration `tid`: the first execution of a study
        without folds trains in the trial's own folder."""
        return self.trial_file(tid, name) if fit.own_folder else self.paths.fit_file(tid, fit.name, name)

    def fit_files(self, tid: str, name: str) -> list[str]:
        """That file of each fit of configuration `tid`, in the fits' order."""
        return [self.fit_file(tid, fit, name) for fit in self.study.fits]

    def combine_inputs(self, tid: str, plan: str) -> dict[str, list[str]]:
        """What a configuration's record over the fits of `plan` is combined from: the fits of
        the study as configured now (NotInPlan for a record over other fits)."""
        if plan != self.fit_plan:
            raise NotInPlan(
                f"{self.paths.record_file(tid, plan, 'metrics.csv')} is not a record of study {self.study.name} "
                f"as configured now (its configurations are fitted as {self.fit_plan or 'one fit each'})"
            )
        return {"metrics": self.fit_files(tid, "metrics.csv"), "histories": self.fit_files(tid, "history.csv")}

    def _with_fits(self, decides: dict) -> dict:
        """`decides`, with the fits where a configuration has several (a rule of
        snaketune.core.identity: keys of single-fit studies stay what they were)."""
        return {**decides, FITS_KEY: self.fit_plan} if self.fit_plan else decides

    # -- the search space (written by the `space` checkpoint) -----------------------------
    def space(self) -> Space:
        """The discovered search space (read again when its file changes)."""
        mtime = os.stat(self.space_file).st_mtime_ns
        if self._space_cache is None or self._space_cache[0] != mtime:
            space = Space.from_json(Path(self.space_file).read_text())
            if "grid" in self.study.enabled_strategies:
                check_grid(self.study.config["strategies"]["grid"]["values"], space, complete=True)
            self._space_cache = (mtime, space)
            self._proposed.clear()
        return self._space_cache[1]

    def register(self, proposal: Proposal) -> str:
        """Remember a proposed trial's values, schedule and settings; return its id."""
        tid = trial_id(identity_values(proposal.values, proposal.schedule), self.settings)
        self._values[tid] = proposal.values
        self._schedules[tid] = proposal.schedule
        self._settings[tid] = self.settings
        return tid

    # -- strategies, their series and rounds -----------------------------------------------
    def strategy(self, name: str) -> Strategy:
        """Strategy `name` as this replicate configures it."""
        return make(name, self.study.config["strategies"][name], self.study.objective)

    def round_config(self, name: str) -> dict:
        """What shapes a strategy's proposals: everything but its budget, so that raising the
        budget adds rounds or series and reruns none."""
        strategy = self.strategy(name)
        return {k: v for k, v in strategy.config.items() if k not in (strategy.budget_key, "enabled")}

    def round_key(self, name: str) -> str:
        """A strategy's rounds are stored under what shapes them; any change starts anew."""
        decides = {name: self.round_config(name), "settings": self.settings, "space": self.study.config["space"]}
        return digest(self._with_fits(decides), 8)

    def round_path(self, name: str, series: str, round_: int) -> str:
        """The file of a round of strategy `name` in this replicate."""
        return self.paths.round_file(name, self.round_key(name), series, round_)

    def proposed(self, name: str, series: str, round_: int) -> list[str]:
        """Trial ids of a round that needs no history (the space must exist)."""
        space = self.space()
        if (name, series, round_) not in self._proposed:
            proposer = self.strategy(name).for_series(series)
            self._proposed[(name, series, round_)] = [
                self.register(p) for p in proposer.propose(space, [], proposer.size(round_))
            ]
        return self._proposed[(name, series, round_)]

    def read_round(self, path: str) -> list[str]:
        """Trial ids of a round file (rounds/<strategy>/<key>/<series>/round_<r>.json)."""
        mtime = os.stat(path).st_mtime_ns
        cached = self._rounds.get(path)
        if cached is None or cached[0] != mtime:
            proposals = json.loads(Path(path).read_text())["proposals"]
            cached = (mtime, [self.register(Proposal.from_dict(p)) for p in proposals])
            self._rounds[path] = cached
        return cached[1]

    @property
    def max_trial_epochs(self) -> int:
        """The most epochs one trial job may train (for its time limit)."""
        return max(self.strategy(name).most_epochs(self.settings["epochs"]) for name in self.study.enabled_strategies)

    @property
    def schedules(self) -> bool:
        """Whether any trial carries a schedule (epochs to reach, a parent to resume)."""
        return any(self.strategy(name).schedules for name in self.study.enabled_strategies)

    # -- the tables that aggregate gathers ---------------------------------------------------
    def tables(self) -> list[str]:
        """One table per strategy, series and replicate (Hyperband: per bracket), so that no
        strategy or bracket waiting for its next round holds back another. Replicate 0's
        tables have no prefix, so that a study that adds replicates keeps them."""
        names = []
        for plan in self.replicas:
            prefix = f"replicate_{plan.replicate}/" if plan.replicate else ""
            for name in plan.study.enabled_strategies:
                series = plan.strategy(name).series()
                names += [prefix + name] if series == [ALL] else [f"{prefix}{name}/{s}" for s in series]
        return names

    def table_key(self, table: str) -> str:
        """What decides a table's trials: its strategy's settings (the budget included, unless
        it only adds series), the replicate's training settings and the declared space."""
        plan, name, _ = self.for_table(table)
        strategy = plan.strategy(name)
        config = {
            k: v
            for k, v in strategy.config.items()
            if k != "enabled" and not (k == strategy.budget_key and strategy.budget_adds_series)
        }
        decides = {"table": table, "strategy": config, "settings": plan.settings, "space": plan.study.config["space"]}
        return digest(plan._with_fits(decides), 8)

    def table_path(self, table: str) -> str:
        """The table of a table name (see tables) as configured now."""
        return self.paths.table_file(table, self.table_key(table))

    def record(self) -> dict:
        """What the study's aggregate (trials.csv and what follows from it, the published final
        model included) is built from."""
        return {
            "study": self.study.name,
            "objective": self.settings["objective"],
            "space": self.space_file,
            "tables": [self.table_path(t) for t in self.tables()],
            "final": self.study.config["final"],
        }

    @property
    def plan_file(self) -> str:
        """The aggregate's marker: its name changes whenever the plan does, so that the
        aggregate, whose own outputs keep fixed names, is stale after any change of plan,
        a change back included (the aggregate removes the markers of other plans)."""
        return self.paths.plan_file(digest(self.record(), 8))

    def final_key(self, trial_id: str) -> str:
        """The final model retrains one configuration under the final settings and the study's
        training settings (a winner from another replicate retrains with replicate 0's seed)."""
        final = {k: v for k, v in self.study.config["final"].items() if k != "enabled"}
        return digest(self._with_fits({"trial": trial_id, "final": final, "settings": self.settings}), 8)

    def for_table(self, table: str) -> tuple[Plan, str, str]:
        """(the replicate's plan, strategy, series) of a table name."""
        parts = table.split("/")
        plan = self.replicas[int(parts.pop(0).split("_")[1])] if parts[0].startswith("replicate_") else self
        return plan, parts[0], parts[1] if len(parts) > 1 else ALL

    def by_key(self, key: str, name: str) -> Plan:
        """The replicate whose rounds of strategy `name` are stored under `key`."""
        for plan in self.replicas:
            if name in plan.study.enabled_strategies and plan.round_key(name) == key:
                return plan
        raise KeyError(f"no replicate of study {self.study.name} stores rounds of {name} under {key}")

    # -- lookups --------------------------------------------------------------------------
    def _register_everything(self) -> None:
        """What a job parsing the workflow anew needs to look up any trial: every replicate's
        rounds that need no history, and every round file on disk."""
        keys = {}
        for plan in self.replicas:
            for name in plan.study.enabled_strategies:
                strategy = plan.strategy(name)
                for series in strategy.series():
                    proposer = strategy.for_series(series)
                    for r in range(proposer.rounds()):
                        if not proposer.from_history(r):
                            plan.proposed(name, series, r)
                keys[(name, plan.round_key(name))] = plan
        for path in sorted(map(Path, glob.glob(self.paths.round_file("*", "*", "*", "*")))):
            name, key = path.relative_to(self.out).parts[1:3]
            if (name, key) in keys:
                keys[(name, key)].read_round(str(path))

    def _known(self, tid: str) -> None:
        if tid not in self._values:
            self._register_everything()
        if tid not in self._values:
            raise KeyError(f"trial {tid} is not proposed by any strategy of study {self.study.name}")

    def values_of(self, tid: str) -> dict:
        """A trial's hyperparameters."""
        self._known(tid)
        return self._values[tid]

    def schedule_of(self, tid: str) -> dict:
        """A trial's schedule (see snaketune.search.schedule): empty for a trial of the study's epochs."""
        self._known(tid)
        return self._schedules[tid]

    def settings_of(self, tid: str) -> dict:
        """The training settings a trial trains with (its replicate's seed)."""
        self._known(tid)
        return self._settings[tid]

    # -- the traversal behind the rules' input and params functions (rules/common.smk) ------
    def series_trials(
        self, name: str, series: str, rounds: int | None = None, *, await_round: AwaitRound | None = None
    ) -> tuple[list[tuple[str, int]], list[str]]:
        """(trial id, round) of one series of strategy `name` in this replicate, round by round
        (all its rounds, or the first `rounds`), and the round files they come from: a round
        that learns from the trials before it is read from the file `await_round` gives.

        Without `await_round`, stop at the first round not yet written: params functions do,
        since a round written by a job that ends between the evaluation of a job's input and
        of its params would otherwise make the params ask for a checkpoint the input did not
        (local jobs end while Snakemake builds the DAG). A job whose input waited is built
        again when the checkpoint has run, so what its params saw then is never used."""
        proposer = self.strategy(name).for_series(series)
        trials, files = [], []
        for r in range(proposer.rounds() if rounds is None else rounds):
            if proposer.from_history(r):
                path = self.round_path(name, series, r)
                if await_round is not None:
                    path = await_round(path, strategy=name, key=self.round_key(name), series=series, round=r)
                elif not os.path.exists(path):
                    break
                ids = self.read_round(path)
                files.append(path)
            else:
                ids = self.proposed(name, series, r)
            trials += [(tid, r) for tid in ids]
        return trials, files

    def table_trials(
        self, table: str, *, await_round: AwaitRound | None = None
    ) -> tuple[list[tuple[str, int | None]], list[str]]:
        """(trial id, round) in the table's order (round None for a strategy of one round
        proposed from the space alone: grid, random), and the round files they come from (see
        series_trials). The space must exist."""
        plan, name, series = self.for_table(table)
        trials, files = plan.series_trials(name, series, await_round=await_round)
        proposer = plan.strategy(name).for_series(series)
        if series == ALL and proposer.rounds() == 1 and not proposer.from_history(0):
            trials = [(tid, None) for tid, _ in trials]
        limit = proposer.limit()
        return (trials[:limit] if limit else trials), files

    def check_table(self, table: str, key: str) -> None:
        """Raise NotInPlan unless `key` is the key of `table` as configured now."""
        if key != self.table_key(table):
            raise NotInPlan(
                f"{self.paths.table_file(table, key)} is not a table of study {self.study.name} as configured now "
                f"(its table is {self.table_path(table)})"
            )

    def table_inputs(self, table: str, *, await_round: AwaitRound) -> dict[str, list[str]]:
        """A table job's inputs: its trials' metrics and the round files they come from."""
        trials, rounds = self.table_trials(table, await_round=await_round)
        return {"metrics": [self.record_file(tid) for tid, _ in trials], "rounds": rounds}

    def table_membership(self, table: str) -> list[list]:
        """[trial number, round, trial id, values, schedule, series] of each trial of a table, as
        far as its rounds are written."""
        _, _, series = self.for_table(table)
        trials, _ = self.table_trials(table)
        return [
            [number, round_, tid, self.values_of(tid), self.schedule_of(tid), series]
            for number, (tid, round_) in enumerate(trials, start=1)
        ]

    def round_history(self, name: str, key: str, series: str, round_: int) -> list[list]:
        """[trial id, values, schedule, round] of every trial of the rounds before this one in
        its series, in order: what the round learns from."""
        trials, _ = self.by_key(key, name).series_trials(name, series, round_)
        return [[tid, self.values_of(tid), self.schedule_of(tid), r] for tid, r in trials]

    def round_inputs(self, name: str, key: str, series: str, round_: int, *, await_round: AwaitRound) -> dict:
        """A round job's inputs: the metrics of the trials of the rounds before it, and those
        rounds' files."""
        trials, files = self.by_key(key, name).series_trials(name, series, round_, await_round=await_round)
        return {"metrics": [self.record_file(tid) for tid, _ in trials], "rounds": files}

    def trial_parent(self, tid: str, fit_name: str | None = None) -> str | None:
        """The metrics of the trial whose model a promoted trial resumes, of its same fit (None
        for a trial that is not promoted). `fit_name`: one of a configuration's several fits."""
        parent = self.schedule_of(tid).get("parent")
        fit = Fit.from_name(fit_name) if fit_name else Fit()
        return self.fit_file(parent, fit, "metrics.csv") if parent else None

    def trial_values(self, tid: str) -> dict:
        """A trial's hyperparameters and schedule in the form its id digests (see
        snaketune.search.schedule.identity_values), sorted: Snakemake compares params as text,
        and the values' order carries no meaning."""
        return dict(sorted(identity_values(self.values_of(tid), self.schedule_of(tid)).items()))

    # -- the aggregate, the final model and the study's outputs ----------------------------
    def aggregated(self) -> bool:
        """Whether the aggregate of the current plan exists (its marker names the plan)."""
        return os.path.exists(self.plan_file) and os.path.exists(self.paths.best_params)

    def best_trial(self) -> str:
        """The study's best trial, from the aggregate's best_params.json."""
        return json.loads(Path(self.paths.best_params).read_text())["overall"]["trial_id"]

    def final_configuration(self, tid: str, key: str) -> dict:
        """What the final model in final/<trial>/<key>/ retrains: that trial's configuration and
        the epoch it peaked at. The key holds the final and training settings."""
        if self.final_key(tid) != key:
            raise NotInPlan(
                f"{self.paths.final_dir(tid, key)}/ is not a final model of study {self.study.name} with its "
                f"settings now (that is {self.paths.final_dir(tid, self.final_key(tid))}/)"
            )
        record = read_record(self.record_file(tid))
        return {
            "trial_id": tid,
            "hyperparameters": self.values_of(tid),
            "objective_epoch": int(float(record["objective_epoch"])),
        }

    def final_inputs(self, tid: str) -> dict[str, str]:
        """What publishing the final model of trial `tid` copies, and best_params.json."""
        key = self.final_key(tid)
        return {
            "metrics": self.paths.final_file(tid, key, "test_metrics.json"),
            "model": self.paths.final_file(tid, key, "model.keras"),
            "best": self.paths.best_params,
        }

    @property
    def final_enabled(self) -> bool:
        """Whether the study retrains its best configuration as a final model."""
        return self.study.config["final"]["enabled"]

    def summary_inputs(self) -> dict[str, str]:
        """What summary.md is written from."""
        paths = self.paths
        inputs = {"trials": paths.trials_csv, "best": paths.best_params, "space": paths.space_json}
        if self.final_enabled:
            inputs["final"] = paths.published_final[0]
        return inputs

    def study_outputs(self, rebuild=()) -> list[str]:
        """What a run of the study builds, and the files in `rebuild` (built and since lost)."""
        paths = self.paths
        outputs = [paths.trials_csv, paths.best_params, paths.summary, paths.journal, self.plan_file, *paths.plots]
        if self.final_enabled:
            outputs += paths.published_final
        return outputs + list(rebuild)
