# Snakemake adapter: one round of a history-driven strategy, from the trials before it.
from snaketune.workflow.joblog import start

start(snakemake)

from snaketune.core.forkserver import call

w, p = snakemake.wildcards, snakemake.params
call(
    "snaketune.study.rounds:propose_round",
    strategy=w.strategy,
    config=dict(p.config),
    objective=dict(p.objective),
    series=w.series,
    round_=int(w.round),
    space_file=snakemake.input.space,
    history=list(p.history),
    metrics_files=list(snakemake.input.metrics),
    out=snakemake.output[0],
)
