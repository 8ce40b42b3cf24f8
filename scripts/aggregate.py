# Snakemake adapter: gather the strategies' tables into trials.csv, best_params.json and summary.md.
from snaketune.joblog import start

start(snakemake)

from snaketune.aggregate import aggregate

aggregate(
    tables=list(snakemake.input.tables),
    space_file=snakemake.input.space,
    objective=dict(snakemake.params.objective),
    study=snakemake.params.study,
    trials_csv=snakemake.output.trials,
    best_json=snakemake.output.best,
    summary_md=snakemake.output.summary,
    space_json=snakemake.output.space,
    plan=dict(snakemake.params.plan),
    plan_file=snakemake.output.plan,
    task=dict(snakemake.params.task),
)
