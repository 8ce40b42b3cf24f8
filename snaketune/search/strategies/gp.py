"""Optuna's Gaussian-process sampler (needs PyTorch). Conditional hyperparameters outside the
space every trial shares are drawn independently, as Optuna does."""

from snaketune.search.strategies.optuna_samplers import OptunaSearch


class GP(OptunaSearch):
    name = "gp"
    needs = (("torch", "Optuna's GPSampler needs PyTorch"),)

    def sampler(self, seed: int):
        import optuna

        return optuna.samplers.GPSampler(
            seed=seed,
            n_startup_trials=int(self.config.get("n_startup_trials", 10)),
            independent_sampler=optuna.samplers.RandomSampler(seed=seed),
            warn_independent_sampling=False,
        )
