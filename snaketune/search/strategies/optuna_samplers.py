"""Optuna's samplers driven ask/tell from the files, with no database.

Each round rebuilds an in-memory Optuna study from the finished trials (failed ones as
failed), asks for the batch, and throws the study away. The asked trials of a batch stay
running while the rest are asked, so a sampler that knows of running trials (TPE's
constant liar) spreads the batch out. A configuration already in the history or the batch is
asked again; past a few tries, an unseen random configuration is taken instead. The sampler's
seed is the strategy's seed mixed with the history's length: deterministic for a seed and a
history, and not the same random start in every round.
"""

from __future__ import annotations

import warnings

from snaketune.search.space import Space
from snaketune.search.strategies.base import Finished, Proposal, Sequential, key
from snaketune.search.strategies.random_search import sample_unseen

# Asks per proposal before taking a random unseen configuration instead.
RETRIES = 5


class OptunaSearch(Sequential):
    """A subclass names its sampler in `sampler(seed)`."""

    def sampler(self, seed: int):
        raise NotImplementedError

    def round_seed(self, history: list) -> int:
        return (self.seed * 1_000_003 + len(history)) % 2**32

    def study(self, space: Space, history: list[Finished]):
        """An in-memory Optuna study holding the finished trials, with this strategy's sampler."""
        import optuna

        from snaketune.search.optuna_space import frozen_trial

        optuna.logging.set_verbosity(optuna.logging.ERROR)
        with warnings.catch_warnings():  # TPE's `group` is marked experimental; it is what conditional spaces need
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            sampler = self.sampler(self.round_seed(history))
        study = optuna.create_study(
            direction="maximize" if self.objective.direction == "max" else "minimize", sampler=sampler
        )
        study.add_trials(
            [frozen_trial(space, space.complete(t.values), t.objective_value, failed=not t.ok) for t in history]
        )
        return study

    def propose(self, space: Space, history: list[Finished], n: int) -> list[Proposal]:
        """`n` new configurations asked of the sampler, told every finished trial."""
        from snaketune.search.optuna_space import suggest

        study = self.study(space, history)
        seen = {key(space.complete(t.values)) for t in history}
        proposals = []
        for j in range(n):
            for _ in range(RETRIES):
                values = suggest(study.ask(), space)  # left running: the next ask knows of it
                if key(values) not in seen:
                    break
            else:
                unseen = sample_unseen(
                    space, f"{self.name}/{self.round_seed(history)}/{j}", seed=self.seed, n=1, seen=set(seen)
                )
                if not unseen:
                    break  # the space is exhausted
                values = unseen[0]
            seen.add(key(values))
            proposals.append(Proposal(values))
        return proposals
