"""Search strategies: small objects that propose configurations from a space and a history.

`grid` and `random` are pure Python and run while Snakemake builds the DAG; `bayesian`
drives Keras Tuner's oracle and runs inside a job (see `snaketune.strategies.bayesian`).
"""

from snaketune.strategies.grid import GridSearch
from snaketune.strategies.random_search import RandomSearch

__all__ = ["GridSearch", "RandomSearch"]
