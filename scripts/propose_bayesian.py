# Snakemake adapter: one Bayesian round, from the records of the rounds before it.
from snaketune.joblog import start

start(snakemake)

from snaketune.forkserver import call

call(
    "snaketune.strategies.bayesian_round:propose_round",
    space_file=snakemake.input.space,
    round_files=list(snakemake.input.rounds),
    metrics_files=list(snakemake.input.metrics),
    config=dict(snakemake.params.config),
    objective=dict(snakemake.params.objective),
    round_=int(snakemake.wildcards.round),
    out=snakemake.output[0],
)
