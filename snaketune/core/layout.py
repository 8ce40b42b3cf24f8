"""Where each file of a study lies under its folder, results/<study>/: the one place that says so.

The workflow's rules take their output, input, log and benchmark patterns from here (through
`snaketune.study.plan.Plan.paths`): given Snakemake wildcards ("{trial}") for its arguments, a
method gives the rule's pattern; given values, the file's path. The Python that reads or
checks a study's files asks the same methods. A change of any name here moves existing
studies' files, which their next run then builds again.

In `core`, the lowest layer, because every layer above reads a study's files: the plan
(`study`), the check of what was built (`trial`), and the report, which reads the trials'
histories beside trials.csv (`report`: not an input of its rules, and a new param of theirs
would rerun every existing study's aggregate).
"""

from __future__ import annotations

from pathlib import Path

RESULTS = "results"

# the files a trial job writes into its folder
TRIAL_FILES = ("metrics.csv", "history.csv", "model.keras")
# the files of a configuration's record over several fits: no model of its own
RECORD_FILES = ("metrics.csv", "history.csv")
# the files of a final model: in its own folder, and published under final/
FINAL_FILES = ("test_metrics.json", "model.keras")
# the comparison plots, under plots/<name>.png
PLOTS = (
    "best_so_far_by_trial",
    "best_so_far_by_epochs",
    "best_so_far_by_time",
    "objective_vs_hyperparameters",
    "learning_curves_top5",
    "objective_distribution",
    "param_importances",
    "parallel_coordinate",
    "pareto_front",
)


class Layout:
    """The paths of one study's files, under `out` (results/<study>)."""

    def __init__(self, out: str):
        self.out = out

    @classmethod
    def of_study(cls, name: str, root: str = RESULTS) -> Layout:
        """The layout of study `name`, under `root`."""
        return cls(f"{root}/{name}")

    @classmethod
    def of_trials_csv(cls, path) -> Layout:
        """The layout of the study whose trials.csv is `path` (what the report reads beside it)."""
        return cls(str(Path(path).parent))

    # -- what the aggregate and the jobs after it write, under fixed names ------------------
    @property
    def trials_csv(self) -> str:
        return f"{self.out}/trials.csv"

    @property
    def best_params(self) -> str:
        return f"{self.out}/best_params.json"

    @property
    def journal(self) -> str:
        """The Optuna journal of every trial."""
        return f"{self.out}/optuna.journal"

    @property
    def space_json(self) -> str:
        """The aggregate's copy of the space its trials were drawn from."""
        return f"{self.out}/space.json"

    @property
    def summary(self) -> str:
        return f"{self.out}/summary.md"

    @property
    def plots(self) -> list[str]:
        """The comparison plots (PLOTS), as PNG files."""
        return [f"{self.out}/plots/{name}.png" for name in PLOTS]

    @property
    def published_final(self) -> list[str]:
        """The best trial's final model as published: [test metrics, model]."""
        return [f"{self.out}/final/{name}" for name in FINAL_FILES]

    # -- under keys (see snaketune.study.plan): a changed plan writes new paths --------------
    def data_dir(self, key: str) -> str:
        """The prepared data set's folder."""
        return f"{self.out}/data/{key}"

    def data_info(self, key: str) -> str:
        """What the prepared data holds (written last by snaketune.data.prepared.prepare)."""
        return f"{self.data_dir(key)}/info.json"

    def space_file(self, key: str) -> str:
        """The discovered search space."""
        return f"{self.out}/space/{key}.json"

    def trial_dir(self, trial: str) -> str:
        return f"{self.out}/trials/{trial}"

    def trial_file(self, trial: str, name: str) -> str:
        """One of a trial's TRIAL_FILES."""
        return f"{self.trial_dir(trial)}/{name}"

    def fit_dir(self, trial: str, fit: str) -> str:
        """The folder of one of a configuration's several fits (snaketune.trial.fits), which
        holds its TRIAL_FILES."""
        return f"{self.trial_dir(trial)}/{fit}"

    def fit_file(self, trial: str, fit: str, name: str) -> str:
        """One of a fit's TRIAL_FILES."""
        return f"{self.fit_dir(trial, fit)}/{name}"

    def record_file(self, trial: str, plan: str, name: str) -> str:
        """One of the RECORD_FILES of a configuration over the fits of `plan` (folds_5,
        executions_3, ...): their mean."""
        return f"{self.trial_dir(trial)}/mean_{plan}/{name}"

    def history_of(self, trial: str, plan: str | None = None) -> str:
        """A configuration's history: its trial's, or the mean over the fits of `plan`."""
        return self.record_file(trial, plan, "history.csv") if plan else self.trial_file(trial, "history.csv")

    def round_file(self, strategy: str, key: str, series: str, round_) -> str:
        """A round's proposals, which its checkpoint writes."""
        return f"{self.out}/rounds/{strategy}/{key}/{series}/round_{round_}.json"

    def table_file(self, table: str, key: str) -> str:
        """One strategy's (series', replicate's) table of trials."""
        return f"{self.out}/strategies/{table}/{key}.csv"

    def plan_file(self, key: str) -> str:
        """The aggregate's marker of the plan it was built from."""
        return f"{self.out}/plan/{key}.json"

    def final_dir(self, trial: str, key: str) -> str:
        """The folder of the final model that retrains `trial` under the final settings of `key`."""
        return f"{self.out}/final/{trial}/{key}"

    def final_file(self, trial: str, key: str, name: str) -> str:
        """One of a final model's FINAL_FILES."""
        return f"{self.final_dir(trial, key)}/{name}"

    # -- logs and benchmarks: one per job, named as its output ------------------------------
    def log(self, job: str) -> str:
        """The log of a job of one rule (`aggregate`, `plots`, `summary`, `publish_final`)."""
        return f"{self.out}/logs/{job}.log"

    def _benchmark(self, job: str) -> str:
        return f"{self.out}/benchmarks/{job}.tsv"

    def data_log(self, key: str) -> str:
        return self.log(f"data/{key}")

    def space_log(self, key: str) -> str:
        return self.log(f"space/{key}")

    def space_benchmark(self, key: str) -> str:
        return self._benchmark(f"space/{key}")

    def trial_log(self, trial: str) -> str:
        return self.log(f"trials/{trial}")

    def trial_benchmark(self, trial: str) -> str:
        return self._benchmark(f"trials/{trial}")

    def fit_log(self, trial: str, fit: str) -> str:
        return self.log(f"trials/{trial}/{fit}")

    def fit_benchmark(self, trial: str, fit: str) -> str:
        return self._benchmark(f"trials/{trial}/{fit}")

    def record_log(self, trial: str, plan: str) -> str:
        return self.log(f"trials/{trial}/mean_{plan}")

    def round_log(self, strategy: str, key: str, series: str, round_) -> str:
        return self.log(f"rounds/{strategy}/{key}/{series}/round_{round_}")

    def round_benchmark(self, strategy: str, key: str, series: str, round_) -> str:
        return self._benchmark(f"rounds/{strategy}/{key}/{series}/round_{round_}")

    def table_log(self, table: str, key: str) -> str:
        return self.log(f"strategies/{table}/{key}")

    def final_log(self, trial: str, key: str) -> str:
        return self.log(f"final/{trial}/{key}")

    def final_benchmark(self, trial: str, key: str) -> str:
        return self._benchmark(f"final/{trial}/{key}")
