"""Bayesian optimisation with Keras Tuner's `BayesianOptimizationOracle`, driven ask/tell.

Each round rebuilds the oracle from the finished trials' records (the only state there is),
tells it every finished trial (failed ones as failed), and asks for a batch. Proposals of a
batch are registered as ongoing trials, so the oracle's Gaussian process "hallucinates"
their outcome and spreads the batch out, as Keras Tuner does for parallel workers. The
result depends only on the seed and the history; a configuration is never proposed twice.
"""

from __future__ import annotations

import numpy as np

from snaketune.search.space import Space
from snaketune.search.strategies.base import Finished, Proposal, Sequential, key

# populate_space restarts its acquisition search from fresh random points on each call, so a
# duplicate is usually gone after a retry or two; past this, a random unseen point is taken.
RETRIES = 5
# Random draws after that before taking the space to be exhausted.
MAX_RANDOM_DRAWS = 50


class BayesianOptimization(Sequential):
    name = "bayesian"

    def _oracle(self, space: Space):
        import keras_tuner as kt

        from snaketune.search.kt_space import to_keras_tuner

        oracle = kt.oracles.BayesianOptimizationOracle(
            objective=kt.Objective(self.objective.name, self.objective.direction),
            max_trials=None,
            num_initial_points=self.config.get("num_initial_points"),
            alpha=self.config.get("alpha", 1e-4),
            beta=self.config.get("beta", 2.6),
            seed=self.seed,
            hyperparameters=to_keras_tuner(space),
            allow_new_entries=False,
            tune_new_entries=False,
        )
        oracle.verbose = 0
        # Keras Tuner takes `seed or random.randint(1, 10000)`, so seed 0 would propose
        # differently each time: seed the oracle's three random sources with the seed itself.
        oracle.seed = self.seed
        oracle._random_state = np.random.RandomState(self.seed)
        oracle.gpr = oracle._make_gpr()
        return oracle

    def _add(self, oracle, space: Space, trial_id: str, *, values: dict, status: str, score=None):
        from keras_tuner.engine.trial import Trial

        from snaketune.search.kt_space import to_keras_tuner

        trial = Trial(hyperparameters=to_keras_tuner(space, values), trial_id=trial_id, status=status)
        trial.score = score
        oracle.trials[trial_id] = trial
        oracle._tried_so_far.add(oracle._compute_values_hash(values))
        return trial

    def propose(self, space: Space, history: list[Finished], n: int) -> list[Proposal]:
        """Keras Tuner's Bayesian oracle, rebuilt from the finished trials, asked for `n` new ones."""
        oracle = self._oracle(space)
        seen = set()
        for k, record in enumerate(history):
            values = space.complete(record.values)
            seen.add(key(values))
            self._add(
                oracle,
                space,
                f"history-{k}",
                values=values,
                status="COMPLETED" if record.ok else "FAILED",
                score=record.objective_value if record.ok else None,
            )
        # Continue the random stream where a single Keras Tuner process would be after these
        # trials, instead of replaying it from the seed every round.
        oracle._seed_state = self.seed + sum(len(r.values) for r in history)
        proposals = []
        for j in range(n):
            values = self._ask(oracle, space, seen, f"proposal-{j}")
            if values is None:
                break  # the space is exhausted
            seen.add(key(values))
            proposals.append(Proposal(values))
            oracle.ongoing_trials[f"proposal-{j}"] = self._add(
                oracle, space, f"proposal-{j}", values=values, status="RUNNING"
            )
        return proposals

    def _ask(self, oracle, space: Space, seen: set, trial_id: str):
        """The oracle's next unseen configuration, compared in canonical form: the oracle hands
        out stepped floats as min + i * step (0.30000000000000004), which its own duplicate
        check would take for new."""
        for attempt in range(RETRIES + MAX_RANDOM_DRAWS):
            if attempt < RETRIES:
                values = oracle.populate_space(trial_id).get("values")
            else:
                values = oracle._random_values()
            if values is None:
                return None
            values = space.complete(values)
            if key(values) not in seen:
                return values
        return None
