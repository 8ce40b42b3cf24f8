# Snakemake adapter: the comparison plots.
from snaketune.joblog import start

start(snakemake)

from snaketune.plots import plot_all

plot_all(
    trials_csv=snakemake.input.trials,
    space_file=snakemake.input.space,
    objective=dict(snakemake.params.objective),
    outputs=list(snakemake.output),
)
