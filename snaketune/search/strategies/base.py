"""The one shape every search strategy has.

A strategy proposes configurations from the search space and the finished trials:
`propose(space, history, n)`. The loop that trains them lives outside it (the workflow),
and so does all of its state: a model-based strategy rebuilds what it knows from `history`
each time, so a round depends only on the config and the files.

A strategy's trials come in one or more *series* (Hyperband: one per bracket; every other
strategy: one), each a sequence of *rounds*. A round that needs no history (grid, random,
Hyperband's first round of a bracket) is proposed while Snakemake builds the DAG; a round
that learns from the trials before it is a checkpoint job (`rules/rounds.smk`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import ClassVar

from snaketune.search.objective import Objective
from snaketune.search.space import Space

ALL = "all"  # the name of the one series of a strategy that has one


@dataclass
class Proposal:
    values: dict  # hyperparameters
    schedule: dict = field(default_factory=dict)  # see snaketune.search.schedule; empty: the study's epochs

    def to_dict(self) -> dict:
        return {"values": self.values, "schedule": self.schedule}

    @classmethod
    def from_dict(cls, d: dict) -> Proposal:
        return cls(dict(d["values"]), dict(d.get("schedule") or {}))


@dataclass
class Finished:
    """A finished trial as its metric files record it."""

    trial_id: str
    values: dict
    schedule: dict
    round: int
    status: str  # "completed" or "failed"
    objective_value: float

    @property
    def ok(self) -> bool:
        return self.status == "completed" and math.isfinite(self.objective_value)


def key(values: dict) -> str:
    """Equal configurations, whatever their order."""
    return repr(sorted(values.items()))


class Strategy:
    """Subclasses set `name` and implement `propose`; the rest describes their rounds."""

    name: ClassVar[str]
    # The setting that only extends the search (more trials, more brackets): raising it adds
    # rounds or series and changes none already proposed.
    budget_key: ClassVar[str] = "trials"
    # Whether the budget adds series (Hyperband's iterations) rather than trials to a series.
    budget_adds_series: ClassVar[bool] = False
    # Whether a round learns from the trials before it (and so is a checkpoint job).
    history_driven: ClassVar[bool] = False
    # (module, why): what it imports beyond the workflow's own requirements, checked before any job
    needs: ClassVar[tuple] = ()
    # Whether its trials carry a schedule (epochs to reach, a parent model to resume).
    schedules: ClassVar[bool] = False

    def __init__(self, config: dict, objective: Objective | None = None):
        self.config = config
        self.objective = objective

    @property
    def seed(self) -> int:
        return int(self.config.get("seed", 0))

    def series(self) -> list[str]:
        return [ALL]

    def for_series(self, series: str) -> Strategy:
        """The proposer of one series."""
        if series not in self.series():
            raise KeyError(f"strategy {self.name} has no series {series}")
        return self

    def rounds(self) -> int:
        return 1

    def size(self, round_: int) -> int | None:
        """How many configurations round `round_` asks for (None: all there are)."""
        return self.config.get("trials")

    def from_history(self, round_: int) -> bool:
        return self.history_driven

    def most_epochs(self, default: int) -> int:
        """The most epochs one of its trials trains (`default`: the study's)."""
        return default

    def limit(self) -> int | None:
        """The most trials of a series that count (None: all it proposes)."""
        return None

    def propose(self, space: Space, history: list[Finished], n: int | None) -> list[Proposal]:
        raise NotImplementedError


class Sequential(Strategy):
    """A model-based strategy: `trials` configurations in rounds of `batch`, each round
    proposed from every finished trial of the rounds before it. Every round proposes a full
    batch whatever the budget, so that raising the budget reuses the last round instead of
    rewriting it; the first `trials` proposals count."""

    history_driven = True

    def rounds(self) -> int:
        return math.ceil(self.config["trials"] / self.batch)

    @property
    def batch(self) -> int:
        return int(self.config.get("batch", 1))

    def size(self, round_: int) -> int:
        return self.batch

    def limit(self) -> int:
        return int(self.config["trials"])
