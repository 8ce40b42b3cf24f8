# Snakemake adapter: gather the strategies' tables into trials.csv, best_params.json and the Optuna journal.
from snaketune.workflow.joblog import start

start(snakemake)

from snaketune.core.forkserver import call_if_running

call_if_running(
    "snaketune.report.aggregate:aggregate",
    tables=list(snakemake.input.tables),
    space_file=snakemake.input.space,
    objective=dict(snakemake.params.objective),
    trials_csv=snakemake.output.trials,
    best_json=snakemake.output.best,
    journal=snakemake.output.journal,
    space_json=snakemake.output.space,
    plan=dict(snakemake.params.plan),
    plan_file=snakemake.output.plan,
)
