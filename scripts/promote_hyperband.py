# Snakemake adapter: one Hyperband round, promoted from the trials of the round before.
from snaketune.joblog import start

start(snakemake)

from snaketune.strategies.hyperband_round import promote_round

promote_round(
    previous=list(snakemake.params.previous),
    metrics_files=list(snakemake.input.metrics),
    config=dict(snakemake.params.config),
    objective=dict(snakemake.params.objective),
    bracket=snakemake.wildcards.bracket,
    round_=int(snakemake.wildcards.round),
    out=snakemake.output[0],
)
