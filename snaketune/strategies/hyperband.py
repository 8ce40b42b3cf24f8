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

from snaketune.objective import Objective
from snaketune.space import Space
from snaketune.strategies.random_search import RandomSearch

# The hyperparameters Keras Tuner's Hyperband adds to a trial, under its names.
EPOCHS = "tuner/epochs"
INITIAL_EPOCH = "tuner/initial_epoch"
PARENT = "tuner/trial_id"


@dataclass(frozen=True)
class Bracket:
    iteration: int
    number: int  # Keras Tuner's bracket_num: rounds 0..number

    @property
    def name(self) -> str:
        return f"i{self.iteration}_b{self.number}"

    @classmethod
    def parse(cls, name: str) -> "Bracket":
        iteration, number = name[1:].split("_b")
        return cls(int(iteration), int(number))


def configuration(values: dict) -> dict:
    """The hyperparameters of a trial without Hyperband's bookkeeping."""
    return {k: v for k, v in values.items() if not k.startswith("tuner/")}


class Hyperband:
    name = "hyperband"

    def __init__(self, max_epochs: int, factor: int = 3, iterations: int = 1, seed: int = 0):
        if factor < 2:
            raise ValueError("factor must be at least 2")
        self.max_epochs = max_epochs
        self.factor = factor
        self.iterations = iterations
        self.seed = seed

    # -- Keras Tuner's formulas (HyperbandOracle._get_size, _get_epochs, _get_num_brackets) --
    @property
    def num_brackets(self) -> int:
        epochs, brackets = self.max_epochs, 0
        while epochs >= 1:
            epochs /= self.factor
            brackets += 1
        return brackets

    def size(self, bracket: int, round_: int) -> int:
        end_size = math.ceil(1 + math.log(self.max_epochs, self.factor)) / (bracket + 1)
        return math.ceil(end_size * self.factor ** (bracket - round_))

    def epochs(self, bracket: int, round_: int) -> int:
        return math.ceil(self.max_epochs / self.factor ** (bracket - round_))

    # -- the plan ---------------------------------------------------------------------------
    def brackets(self) -> list[Bracket]:
        """In Keras Tuner's order: each iteration runs its brackets from the most to the fewest
        configurations."""
        return [Bracket(i, b) for i in range(self.iterations) for b in reversed(range(self.num_brackets))]

    def first_rounds(self, space: Space) -> dict[Bracket, list[dict]]:
        """Round 0 of every bracket: distinct random configurations, each with its epochs."""
        brackets = self.brackets()
        wanted = sum(self.size(b.number, 0) for b in brackets)
        sampled = RandomSearch(wanted, self.seed, stream="hyperband").propose(space)
        rounds, start = {}, 0
        for bracket in brackets:
            take = sampled[start:start + self.size(bracket.number, 0)]
            start += len(take)
            rounds[bracket] = [{**values, EPOCHS: self.epochs(bracket.number, 0), INITIAL_EPOCH: 0}
                               for values in take]
        return rounds

    def promote(self, bracket: int, round_: int, finished: list[tuple[str, dict, str, float]],
                objective: Objective) -> list[dict]:
        """Round `round_` (>= 1) from the trials of the round before, as (trial id, values,
        status, objective value) in their order: the best completed ones, each resuming its
        parent, best first."""
        completed = [t for t in finished if t[2] == "completed" and math.isfinite(t[3])]
        dropped = self.size(bracket, round_ - 1) - self.size(bracket, round_)
        count = min(self.size(bracket, round_), max(0, len(completed) - dropped))
        # sorted() is stable: among equal scores the earlier trial goes first, as in Keras Tuner
        best = sorted(completed, key=lambda t: t[3], reverse=objective.direction == "max")[:count]
        return [{**configuration(values), EPOCHS: self.epochs(bracket, round_),
                 INITIAL_EPOCH: self.epochs(bracket, round_ - 1), PARENT: tid}
                for tid, values, _, _ in best]
