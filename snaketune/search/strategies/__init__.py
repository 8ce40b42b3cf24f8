"""Search strategies: small objects that propose configurations from a space and the finished
trials (see `snaketune.search.strategies.base`). One file per strategy; this registry names them."""

from __future__ import annotations

from snaketune.search.objective import Objective
from snaketune.search.strategies.base import ALL, Finished, Proposal, Strategy
from snaketune.search.strategies.bayesian import BayesianOptimization
from snaketune.search.strategies.gp import GP
from snaketune.search.strategies.grid import GridSearch
from snaketune.search.strategies.hyperband import Hyperband
from snaketune.search.strategies.random_search import RandomSearch
from snaketune.search.strategies.tpe import TPE

# In the order a study lists them.
STRATEGIES: dict[str, type[Strategy]] = {
    cls.name: cls for cls in (GridSearch, RandomSearch, BayesianOptimization, Hyperband, TPE, GP)
}


def make(name: str, config: dict, objective: Objective | None = None) -> Strategy:
    return STRATEGIES[name](config, objective)


__all__ = ["ALL", "STRATEGIES", "Finished", "Proposal", "Strategy", "make"]
