# Snakemake adapter: the comparison plots.
from snaketune.workflow.joblog import start

start(snakemake)

from snaketune.core.forkserver import call_if_running

call_if_running(
    "snaketune.report.plots:plot_all",
    trials_csv=snakemake.input.trials,
    space_file=snakemake.input.space,
    objective=dict(snakemake.params.objective),
    outputs=list(snakemake.output),
)
