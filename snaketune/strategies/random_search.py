"""Random search whose i-th trial depends only on (seed, i): raising the budget only adds trials."""

from __future__ import annotations

import random

from snaketune.space import Space

# Draws per trial before accepting that a small discrete space has no unseen configuration left.
MAX_DRAWS = 100


class RandomSearch:
    name = "random"

    def __init__(self, trials: int, seed: int, stream: str = "random"):
        self.trials = trials
        self.seed = seed
        # Another strategy drawing its own random configurations names its own stream, so
        # that equal seeds of two strategies do not propose the same configurations.
        self.stream = stream

    def propose(self, space: Space) -> list[dict]:
        configurations, seen = [], set()
        for i in range(self.trials):
            for draw in range(MAX_DRAWS):
                # A string seed is hashed by `random` itself (stable across runs and platforms).
                values = space.sample(random.Random(f"snaketune/{self.stream}/{self.seed}/{i}/{draw}"))
                key = repr(sorted(values.items()))
                if key not in seen:
                    seen.add(key)
                    configurations.append(values)
                    break
            else:
                break  # the space is exhausted; fewer trials than asked
        return configurations
