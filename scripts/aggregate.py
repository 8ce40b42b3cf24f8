# Snakemake adapter: gather every trial into trials.csv, best_params.json and summary.md.
from snaketune.joblog import redirect

redirect(snakemake.log[0])

from snaketune.aggregate import aggregate

aggregate(
    membership=snakemake.params.membership,
    metrics_files=[f for s in snakemake.params.strategies for f in getattr(snakemake.input, s)],
    space_file=snakemake.input.space,
    objective=dict(snakemake.params.objective),
    study=snakemake.params.study,
    trials_csv=snakemake.output.trials,
    best_json=snakemake.output.best,
    summary_md=snakemake.output.summary,
)
