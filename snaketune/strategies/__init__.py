"""Search strategies: small objects that propose configurations from a space and the finished
trials (see `snaketune.strategies.base`). One file per strategy; this registry names them."""

from __future__ import annotations

from snaketune.objective import Objective
from snaketune.strategies.base import ALL, Finished, Proposal, Strategy
from snaketune.strategies.bayesian import BayesianOptimization
from snaketune.strategies.gp import GP
from snaketune.strategies.grid import GridSearch
from snaketune.strategies.hyperband import Hyperband
from snaketune.strategies.random_search import RandomSearch
from snaketune.strategies.tpe import TPE

# In the order a study lists them.
STRATEGIES: dict[str, type[Strategy]] = {
    cls.name: cls for cls in (GridSearch, RandomSearch, BayesianOptimization, Hyperband, TPE, GP)
}


def make(name: str, config: dict, objective: Objective | None = None) -> Strategy:
    return STRATEGIES[name](config, objective)


__all__ = ["ALL", "STRATEGIES", "Finished", "Proposal", "Strategy", "make"]
