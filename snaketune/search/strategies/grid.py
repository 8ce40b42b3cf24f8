"""Grid search: the Cartesian product of the listed values, every other hyperparameter at its default."""

from __future__ import annotations

import itertools

from snaketune.core.errors import ConfigError
from snaketune.search.space import Space
from snaketune.search.strategies.base import Proposal, Strategy, key


class GridSearch(Strategy):
    name = "grid"
    budget_key = "values"

    def size(self, round_: int) -> None:
        return None

    def propose(self, space: Space, history=(), n=None) -> list[Proposal]:
        """Every point of the grid, in one round."""
        # Keras Tuner's GridSearchOracle hands out one trial at a time and cannot be rebuilt
        # from records; the grid is small and fixed, so it is enumerated here in one go.
        grid = self.config["values"]
        names = list(grid)
        configurations, seen = [], set()
        for combination in itertools.product(*(grid[n] for n in names)):
            values = space.complete(dict(zip(names, combination)))
            if key(values) not in seen:  # a grid over an inactive hyperparameter repeats itself
                seen.add(key(values))
                configurations.append(Proposal(values))
        for name in names:
            if not any(name in p.values for p in configurations):
                raise ConfigError(
                    f"config: strategies.grid.values.{name}: '{name}' is never active in this grid "
                    "(its conditions' parents never take the values it needs); add them to the grid"
                )
        return configurations[:n] if n else configurations
