"""Optuna's Tree-structured Parzen Estimator: multivariate, grouped for conditional spaces,
with the constant liar for batches."""

from snaketune.search.strategies.optuna_samplers import OptunaSearch


class TPE(OptunaSearch):
    name = "tpe"

    def sampler(self, seed: int):
        import optuna

        return optuna.samplers.TPESampler(
            seed=seed,
            multivariate=True,
            group=True,
            constant_liar=True,
            n_startup_trials=int(self.config.get("n_startup_trials", 10)),
            warn_independent_sampling=False,
        )
