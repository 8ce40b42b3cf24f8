"""The study's plan as Snakemake sees it: which trials each strategy asks for, and where files go.

Runs while the DAG is built (never imports TensorFlow). Grid and random trials follow from
the search space alone; Bayesian trials from the round files its checkpoints write. A trial
is named by `identity.trial_id` of its values and the training settings, so the same
configuration asked for by two strategies is one job, and its values can always be looked
up again from the space and the round files on disk (as a cluster job re-parsing the
workflow must).
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

from snaketune.config import Study, check_grid
from snaketune.identity import digest, trial_id
from snaketune.space import Space
from snaketune.strategies import GridSearch, RandomSearch
from snaketune.strategies.hyperband import Bracket, Hyperband


class Plan:
    """The plan of replicate 0 (the study as configured); `replicas` holds one plan per
    replicate, all sharing one registry of trials."""

    def __init__(self, study: Study, root: str = "results", replicate: int = 0, main: "Plan | None" = None):
        self.replicate = replicate
        self.study = study.replicate(replicate)
        self.out = f"{root}/{study.name}"
        self.settings = self.study.training_settings()
        self._space_cache: tuple | None = None
        self._static: dict[str, list[str]] = {}
        self._rounds: dict[str, tuple] = {}
        self._first_rounds: dict[Bracket, list[str]] | None = None
        if main is None:
            self._values: dict[str, dict] = {}
            self._settings: dict[str, dict] = {}
            self.replicas = [self]
            self.replicas += [Plan(study, root, r, main=self) for r in range(1, study.replicates)]
        else:
            self._values, self._settings, self.replicas = main._values, main._settings, main.replicas

    # -- paths ----------------------------------------------------------------------------
    # Everything the workflow derives lives under a key: a digest of whatever decides its
    # content, computed from the config alone while the workflow is parsed. A changed plan
    # therefore shows as new paths, which Snakemake sees under every rerun trigger (`mtime`
    # too, and without its .snakemake/ metadata), and a changed-back plan finds its old files.
    @property
    def space_key(self) -> str:
        decides = {"model": self.settings["model"], "space": self.study.config["space"]}
        if self.settings["model"].get("hypermodel"):  # its fit is tried on the data
            decides["data"] = self.settings["data"]
        return digest(decides, 8)

    @property
    def space_file(self) -> str:
        return f"{self.out}/space/{self.space_key}.json"

    # The layout `data` writes (snaketune.data.prepare): a folder of another layout is not reused.
    DATA_LAYOUT = 3

    @property
    def data_key(self) -> str:
        return digest({"layout": self.DATA_LAYOUT, **self.settings["data"]}, 8)

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
            self._static.clear()
            self._first_rounds = None
        return self._space_cache[1]

    def register(self, values: dict) -> str:
        tid = trial_id(values, self.settings)
        self._values[tid] = values
        self._settings[tid] = self.settings
        return tid

    def static_trials(self, strategy: str) -> list[str]:
        """Trial ids of `grid` or `random`, in the strategy's order (the space must exist)."""
        space = self.space()
        if strategy not in self._static:
            config = self.study.config["strategies"][strategy]
            if strategy == "grid":
                proposer = GridSearch(config["values"])
            else:
                proposer = RandomSearch(config["trials"], config["seed"])
            self._static[strategy] = [self.register(v) for v in proposer.propose(space)]
        return self._static[strategy]

    # -- Bayesian rounds ------------------------------------------------------------------
    @property
    def bayes_config(self) -> dict:
        return self.study.config["strategies"].get("bayesian", {})

    @property
    def proposal_config(self) -> dict:
        """What shapes a round's proposals: everything but the budget, so that raising
        `trials` adds rounds and reruns none."""
        return {k: v for k, v in self.bayes_config.items() if k not in ("trials", "enabled")}

    @property
    def bayes_key(self) -> str:
        """Rounds are stored under what shapes them; any change starts a new sequence."""
        return digest({"bayesian": self.proposal_config, "settings": self.settings,
                       "space": self.study.config["space"]}, 8)

    @property
    def bayes_rounds(self) -> int:
        return math.ceil(self.bayes_config["trials"] / self.bayes_config["batch"])

    def round_path(self, round_: int) -> str:
        return f"{self.out}/bayesian/{self.bayes_key}/round_{round_}.json"

    def read_round(self, path: str) -> list[str]:
        mtime = os.stat(path).st_mtime_ns
        cached = self._rounds.get(path)
        if cached is None or cached[0] != mtime:
            proposals = json.loads(Path(path).read_text())["proposals"]
            cached = (mtime, [self.register(values) for values in proposals])
            self._rounds[path] = cached
        return cached[1]

    def budgeted(self, round_ids: list[list[str]]) -> list[tuple[str, int]]:
        """(trial id, round) of the first `trials` proposals: each round proposes a full batch
        whatever the budget, so that raising the budget reuses a round instead of rewriting it."""
        flat = [(tid, r) for r, ids in enumerate(round_ids) for tid in ids]
        return flat[: self.bayes_config["trials"]]

    # -- Hyperband brackets -----------------------------------------------------------------
    @property
    def hyperband(self) -> Hyperband:
        c = self.study.config["strategies"]["hyperband"]
        return Hyperband(c["max_epochs"], c["factor"], c["iterations"], c["seed"])

    @property
    def hyperband_key(self) -> str:
        """Rounds are stored under what shapes them; `iterations` only adds brackets."""
        shape = {k: v for k, v in self.study.config["strategies"]["hyperband"].items()
                 if k not in ("iterations", "enabled")}
        return digest({"hyperband": shape, "settings": self.settings, "space": self.study.config["space"]}, 8)

    @property
    def promotion_config(self) -> dict:
        c = self.study.config["strategies"]["hyperband"]
        return {"max_epochs": c["max_epochs"], "factor": c["factor"]}

    def first_rounds(self) -> dict[Bracket, list[str]]:
        """Trial ids of round 0 of every bracket (the space must exist)."""
        space = self.space()
        if self._first_rounds is None:
            self._first_rounds = {bracket: [self.register(v) for v in configurations]
                                  for bracket, configurations in self.hyperband.first_rounds(space).items()}
        return self._first_rounds

    def bracket(self, name: str) -> Bracket:
        bracket = Bracket.parse(name)
        if bracket not in self.hyperband.brackets():
            raise KeyError(f"study {self.study.name} has no Hyperband bracket {name}")
        return bracket

    def hyperband_round_path(self, bracket: Bracket, round_: int) -> str:
        return f"{self.out}/hyperband/{self.hyperband_key}/{bracket.name}/round_{round_}.json"

    @property
    def max_trial_epochs(self) -> int:
        """The most epochs one trial job may train (for its time limit)."""
        epochs = self.settings["epochs"]
        if "hyperband" in self.study.enabled_strategies:
            epochs = max(epochs, self.study.config["strategies"]["hyperband"]["max_epochs"])
        return epochs

    # -- the tables that aggregate gathers ---------------------------------------------------
    def tables(self) -> list[str]:
        """One table per strategy and replicate, and per bracket for Hyperband, so that no
        strategy or bracket waiting for its next round holds back another. Replicate 0's
        tables have no prefix, so that a study that adds replicates keeps them."""
        names = []
        for plan in self.replicas:
            prefix = f"replicate_{plan.replicate}/" if plan.replicate else ""
            for strategy in plan.study.enabled_strategies:
                if strategy == "hyperband":
                    names += [f"{prefix}hyperband/{b.name}" for b in plan.hyperband.brackets()]
                else:
                    names.append(prefix + strategy)
        return names

    def table_key(self, table: str) -> str:
        """What decides a table's trials: its strategy's settings (the budget included), the
        replicate's training settings and the declared space."""
        plan, strategy, _ = self.for_table(table)
        # a bracket's trials do not depend on how many iterations there are
        config = {k: v for k, v in plan.study.config["strategies"][strategy].items()
                  if k not in ("enabled", "iterations")}
        return digest({"table": table, "strategy": config, "settings": plan.settings,
                       "space": plan.study.config["space"]}, 8)

    def table_path(self, table: str) -> str:
        return f"{self.out}/strategies/{table}/{self.table_key(table)}.csv"

    def record(self) -> dict:
        """What the study's aggregate (trials.csv and what follows from it, the published final
        model included) is built from."""
        return {"study": self.study.name, "objective": self.settings["objective"], "space": self.space_file,
                "tables": [self.table_path(t) for t in self.tables()], "final": self.study.config["final"]}

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

    def for_table(self, table: str) -> tuple["Plan", str, str | None]:
        """(the replicate's plan, strategy, Hyperband bracket or None) of a table name."""
        parts = table.split("/")
        plan = self.replicas[int(parts.pop(0).split("_")[1])] if parts[0].startswith("replicate_") else self
        return plan, parts[0], parts[1] if len(parts) > 1 else None

    def by_key(self, key: str) -> "Plan":
        """The replicate whose Bayesian or Hyperband rounds are stored under `key`."""
        for plan in self.replicas:
            enabled = plan.study.enabled_strategies
            if ("bayesian" in enabled and plan.bayes_key == key) or ("hyperband" in enabled and plan.hyperband_key == key):
                return plan
        raise KeyError(f"no replicate of study {self.study.name} stores its rounds under {key}")

    # -- lookups --------------------------------------------------------------------------
    def _register_everything(self) -> None:
        """What a job parsing the workflow anew needs to look up any trial: every replicate's
        static trials and first rounds, and every round file on disk."""
        keys = {}
        for plan in self.replicas:
            enabled = plan.study.enabled_strategies
            for strategy in ("grid", "random"):
                if strategy in enabled:
                    plan.static_trials(strategy)
            if "hyperband" in enabled:
                plan.first_rounds()
                keys[plan.hyperband_key] = plan
            if "bayesian" in enabled:
                keys[plan.bayes_key] = plan
        for path in [*sorted(Path(self.out, "bayesian").glob("*/round_*.json")),
                     *sorted(Path(self.out, "hyperband").glob("*/*/round_*.json"))]:
            key = path.relative_to(self.out).parts[1]
            if key in keys:
                keys[key].read_round(str(path))

    def values_of(self, tid: str) -> dict:
        if tid not in self._values:
            self._register_everything()
        if tid not in self._values:
            raise KeyError(f"trial {tid} is not proposed by any strategy of study {self.study.name}")
        return self._values[tid]

    def settings_of(self, tid: str) -> dict:
        """The training settings a trial trains with (its replicate's seed)."""
        self.values_of(tid)
        return self._settings[tid]
