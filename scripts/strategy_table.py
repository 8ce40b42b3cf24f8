# Snakemake adapter: one strategy's trials, in its order, with their metrics.
from snaketune.workflow.joblog import start

start(snakemake)

from snaketune.core.forkserver import call_if_running

call_if_running(
    "snaketune.report.aggregate:strategy_table",
    strategy=snakemake.params.strategy,
    replicate=snakemake.params.replicate,
    membership=snakemake.params.membership,
    metrics_files=list(snakemake.input.metrics),
    space_file=snakemake.input.space,
    out=snakemake.output[0],
)
