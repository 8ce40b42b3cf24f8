# Snakemake adapter: train one trial.
import os

from snaketune.joblog import start

start(snakemake)

from snaketune.forkserver import call

p = snakemake.params
record = call(
    "snaketune.train:run_trial",
    study=p.study,
    trial_id=snakemake.wildcards.trial,
    values=dict(p.values),
    settings=dict(p.settings),
    data_dir=snakemake.input[0],
    out_dir=os.path.dirname(snakemake.output.metrics),
    threads=snakemake.threads,
)
print(record)
