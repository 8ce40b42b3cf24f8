"""Grid search: the Cartesian product of the listed values, every other hyperparameter at its default."""

from __future__ import annotations

import itertools

from snaketune.errors import ConfigError
from snaketune.space import Space


class GridSearch:
    name = "grid"

    def __init__(self, values: dict[str, list]):
        self.values = values

    def propose(self, space: Space) -> list[dict]:
        # Keras Tuner's GridSearchOracle hands out one trial at a time and cannot be rebuilt
        # from records; the grid is small and fixed, so it is enumerated here in one go.
        names = list(self.values)
        configurations, seen = [], set()
        for combination in itertools.product(*(self.values[n] for n in names)):
            values = space.complete(dict(zip(names, combination)))
            key = repr(sorted(values.items()))
            if key not in seen:  # a grid over an inactive hyperparameter repeats itself
                seen.add(key)
                configurations.append(values)
        for name in names:
            if not any(name in values for values in configurations):
                raise ConfigError(
                    f"config: strategies.grid.values.{name}: '{name}' is never active in this grid "
                    "(its conditions' parents never take the values it needs); add them to the grid"
                )
        return configurations
