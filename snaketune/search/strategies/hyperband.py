"""Hyperband (Li et al., JMLR 2018) with Keras Tuner's `HyperbandOracle` schedule, as a plan.

An iteration has brackets s_max..0; bracket b has rounds 0..b. Round 0 of a bracket trains
freshly sampled configurations for a few epochs; each later round promotes the best of the
round before to more epochs, and a promoted trial resumes its parent's model. Sizes and
epochs follow Keras Tuner's formulas, and so does promotion: a round promotes its best
completed trials, one fewer for each of its trials that failed beyond those the round would
have dropped anyway.

Pure Python: round 0 of every bracket is known while Snakemake builds the DAG (random
configurations, the i-th depending only on (seed, i), so raising `iterations` only adds
brackets); each later round is one checkpoint that reads the round before.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from snaketune.search.space import Space
from snaketune.search.strategies.base import Finished, Proposal, Strategy
from snaketune.search.strategies.random_search import sample_unseen


@dataclass(frozen=True)
class Bracket:
    iteration: int
    number: int  # Keras Tuner's bracket_num: rounds 0..number

    @property
    def name(self) -> str:
        return f"i{self.iteration}_b{self.number}"

    @classmethod
    def parse(cls, name: str) -> Bracket:
        iteration, number = name[1:].split("_b")
        return cls(int(iteration), int(number))


class Hyperband(Strategy):
    """The whole schedule; `for_series(bracket name)` proposes the rounds of one bracket."""

    name = "hyperband"
    budget_key = "iterations"
    budget_adds_series = True
    schedules = True

    def __init__(self, config: dict, objective=None, bracket: Bracket | None = None):
        super().__init__(config, objective)
        if self.factor < 2:
            raise ValueError("factor must be at least 2")
        self.bracket = bracket

    @property
    def max_epochs(self) -> int:
        return int(self.config["max_epochs"])

    @property
    def factor(self) -> int:
        return int(self.config.get("factor", 3))

    @property
    def iterations(self) -> int:
        return int(self.config.get("iterations", 1))

    def most_epochs(self, default: int) -> int:
        return self.max_epochs

    # -- Keras Tuner's formulas (HyperbandOracle._get_size, _get_epochs, _get_num_brackets) --
    @property
    def num_brackets(self) -> int:
        epochs, brackets = self.max_epochs, 0
        while epochs >= 1:
            epochs /= self.factor
            brackets += 1
        return brackets

    def bracket_size(self, bracket: int, round_: int) -> int:
        end_size = math.ceil(1 + math.log(self.max_epochs, self.factor)) / (bracket + 1)
        return math.ceil(end_size * self.factor ** (bracket - round_))

    def epochs(self, bracket: int, round_: int) -> int:
        return math.ceil(self.max_epochs / self.factor ** (bracket - round_))

    # -- the series -------------------------------------------------------------------------
    def brackets(self) -> list[Bracket]:
        """In Keras Tuner's order: each iteration runs its brackets from the most to the fewest
        configurations."""
        return [Bracket(i, b) for i in range(self.iterations) for b in reversed(range(self.num_brackets))]

    def series(self) -> list[str]:
        return [b.name for b in self.brackets()]

    def for_series(self, series: str) -> Hyperband:
        bracket = Bracket.parse(series)
        if bracket not in self.brackets():
            raise KeyError(f"Hyperband has no bracket {series}")
        return Hyperband(self.config, self.objective, bracket)

    def rounds(self) -> int:
        return self.bracket.number + 1

    def size(self, round_: int) -> int:
        return self.bracket_size(self.bracket.number, round_)

    def from_history(self, round_: int) -> bool:
        return round_ > 0

    def propose(self, space: Space, history: list[Finished], n: int) -> list[Proposal]:
        """Round 0: distinct random configurations, drawn for all brackets at once (the i-th
        depending only on the seed and i, so more iterations only add brackets). A later
        round promotes the best of the round before."""
        if not history:
            return self._first_round(space)
        return self._promote(history, n)

    def _first_round(self, space: Space) -> list[Proposal]:
        brackets = self.brackets()
        index = brackets.index(self.bracket)
        sizes = [self.bracket_size(b.number, 0) for b in brackets]
        sampled = sample_unseen(space, "hyperband", seed=self.seed, n=sum(sizes[: index + 1]))
        start = sum(sizes[:index])
        return [
            Proposal(values, {"epochs": self.epochs(self.bracket.number, 0), "initial_epoch": 0})
            for values in sampled[start : start + sizes[index]]
        ]

    def _promote(self, history: list[Finished], n: int) -> list[Proposal]:
        """The best completed trials of the round before, each resuming its parent, best first;
        one fewer for each failed trial beyond those the round would have dropped anyway, as in
        Keras Tuner."""
        round_ = max(t.round for t in history) + 1
        previous = [t for t in history if t.round == round_ - 1]
        completed = [t for t in previous if t.ok]
        bracket = self.bracket.number
        dropped = self.bracket_size(bracket, round_ - 1) - self.bracket_size(bracket, round_)
        count = min(n, max(0, len(completed) - dropped))
        # sorted() is stable: among equal scores the earlier trial goes first, as in Keras Tuner
        best = sorted(completed, key=lambda t: t.objective_value, reverse=self.objective.direction == "max")[:count]
        return [
            Proposal(
                dict(t.values),
                {
                    "epochs": self.epochs(bracket, round_),
                    "initial_epoch": self.epochs(bracket, round_ - 1),
                    "parent": t.trial_id,
                },
            )
            for t in best
        ]
