"""The study's plan as Snakemake sees it: which trials each strategy asks for, and where files go.

Runs while the DAG is built (never imports TensorFlow). Rounds that need no history (grid,
random, a Hyperband bracket's first) follow from the search space alone; the others from the
round files their checkpoints write. A trial is named by `identity.trial_id` of its values,
its schedule and the training settings, so the same configuration asked for by two
strategies is one job, and its values can always be looked up again from the space and the
round files on disk (as a cluster job re-parsing the workflow must).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from snaketune.core.identity import digest, trial_id
from snaketune.search.schedule import identity_values
from snaketune.search.space import Space
from snaketune.search.strategies import ALL, Proposal, Strategy, make
from snaketune.study.checks import check_grid
from snaketune.study.config import Study


class Plan:
    """The plan of replicate 0 (the study as configured); `replicas` holds one plan per
    replicate, all sharing one registry of trials."""

    def __init__(self, study: Study, root: str = "results", replicate: int = 0, main: Plan | None = None):
        self.replicate = replicate
        self.study = study.replicate(replicate)
        self.out = f"{root}/{study.name}"
        self.settings = self.study.training_settings()
        self._space_cache: tuple | None = None
        self._proposed: dict[tuple, list[str]] = {}  # rounds that need no history
        self._rounds: dict[str, tuple] = {}  # round files read, by path
        if main is None:
            self._values: dict[str, dict] = {}
            self._schedules: dict[str, dict] = {}
            self._settings: dict[str, dict] = {}
            self.replicas = [self]
            self.replicas += [Plan(study, root, r, main=self) for r in range(1, study.replicates)]
        else:
            self._values, self._schedules = main._values, main._schedules
            self._settings, self.replicas = main._settings, main.replicas

    # -- paths ----------------------------------------------------------------------------
    # Everything the workflow derives lives under a key: a digest of whatever decides its
    # content, computed from the config alone while the workflow is parsed. A changed plan
    # therefore shows as new paths, which Snakemake sees under every rerun trigger (`mtime`
    # too, and without its .snakemake/ metadata), and a changed-back plan finds its old files.
    # How a user's model's space is discovered (snaketune.search.kt_space.discover); a new way is
    # discovered anew. 2: hyperparameters that only some values of an Int reach.
    DISCOVERY = 2

    @property
    def space_key(self) -> str:
        decides = {"model": self.settings["model"], "space": self.study.config["space"]}
        if self.settings["model"].get("hypermodel"):  # its fit is tried on the data
            decides["data"] = self.settings["data"]
        if self.settings["model"].get("hypermodel") or self.settings["model"].get("build_model"):
            decides["discovery"] = self.DISCOVERY
        return digest(decides, 8)

    @property
    def space_file(self) -> str:
        return f"{self.out}/space/{self.space_key}.json"

    # The layout `data` writes (snaketune.data.sources.prepare): a folder of another layout is not reused.
    DATA_LAYOUT = 3

    @property
    def data_key(self) -> str:
        decides = {"layout": self.DATA_LAYOUT, **self.settings["data"]}
        if (self.study.data_summary or {}).get("one_hot"):
            # one-hot targets are kept as rows; layout 3 wrote them as labels
            decides["targets"] = "as given"
        return digest(decides, 8)

    @property
    def data_dir(self) -> str:
        return f"{self.out}/data/{self.data_key}"

    def trial_file(self, tid: str, name: str) -> str:
        return f"{self.out}/trials/{tid}/{name}"

    # -- the search space (written by the `space` checkpoint) -----------------------------
    def space(self) -> Space:
        mtime = os.stat(self.space_file).st_mtime_ns
        if self._space_cache is None or self._space_cache[0] != mtime:
            space = Space.from_json(Path(self.space_file).read_text())
            if "grid" in self.study.enabled_strategies:
                check_grid(self.study.config["strategies"]["grid"]["values"], space, complete=True)
            self._space_cache = (mtime, space)
            self._proposed.clear()
        return self._space_cache[1]

    def register(self, proposal: Proposal) -> str:
        tid = trial_id(identity_values(proposal.values, proposal.schedule), self.settings)
        self._values[tid] = proposal.values
        self._schedules[tid] = proposal.schedule
        self._settings[tid] = self.settings
        return tid

    # -- strategies, their series and rounds -----------------------------------------------
    def strategy(self, name: str) -> Strategy:
        return make(name, self.study.config["strategies"][name], self.study.objective)

    def round_config(self, name: str) -> dict:
        """What shapes a strategy's proposals: everything but its budget, so that raising the
        budget adds rounds or series and reruns none."""
        strategy = self.strategy(name)
        return {k: v for k, v in strategy.config.items() if k not in (strategy.budget_key, "enabled")}

    def round_key(self, name: str) -> str:
        """A strategy's rounds are stored under what shapes them; any change starts anew."""
        return digest(
            {name: self.round_config(name), "settings": self.settings, "space": self.study.config["space"]}, 8
        )

    def round_path(self, name: str, series: str, round_: int) -> str:
        return f"{self.out}/rounds/{name}/{self.round_key(name)}/{series}/round_{round_}.json"

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
        return digest(
            {"table": table, "strategy": config, "settings": plan.settings, "space": plan.study.config["space"]}, 8
        )

    def table_path(self, table: str) -> str:
        return f"{self.out}/strategies/{table}/{self.table_key(table)}.csv"

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
        return f"{self.out}/plan/{digest(self.record(), 8)}.json"

    def final_key(self, trial_id: str) -> str:
        """The final model retrains one configuration under the final settings and the study's
        training settings (a winner from another replicate retrains with replicate 0's seed)."""
        final = {k: v for k, v in self.study.config["final"].items() if k != "enabled"}
        return digest({"trial": trial_id, "final": final, "settings": self.settings}, 8)

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
        for path in sorted(Path(self.out, "rounds").glob("*/*/*/round_*.json")):
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
