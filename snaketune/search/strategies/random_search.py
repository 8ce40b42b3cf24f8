"""Random search whose i-th trial depends only on (seed, i): raising the budget only adds trials."""

from __future__ import annotations

import random

from snaketune.search.space import Space
from snaketune.search.strategies.base import Proposal, Strategy, key

# Draws per trial before accepting that a small discrete space has no unseen configuration left.
MAX_DRAWS = 100


def sample_unseen(space: Space, stream: str, *, seed: int, n: int, seen: set | None = None) -> list[dict]:
    """`n` distinct configurations (fewer where the space runs out), the i-th drawn from its own
    seeded stream. Another strategy drawing random configurations names its own `stream`, so
    that equal seeds of two strategies do not propose the same configurations."""
    configurations, seen = [], set() if seen is None else seen
    for i in range(n):
        for draw in range(MAX_DRAWS):
            # A string seed is hashed by `random` itself (stable across runs and platforms).
            values = space.sample(random.Random(f"snaketune/{stream}/{seed}/{i}/{draw}"))
            if key(values) not in seen:
                seen.add(key(values))
                configurations.append(values)
                break
        else:
            break  # the space is exhausted; fewer trials than asked
    return configurations


class RandomSearch(Strategy):
    name = "random"

    def propose(self, space: Space, history=(), n=None) -> list[Proposal]:
        return [Proposal(v) for v in sample_unseen(space, "random", seed=self.seed, n=n or self.config["trials"])]
