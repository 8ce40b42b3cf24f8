# Snakemake adapter: train one trial.
import os

from snaketune.joblog import start

start(snakemake)

from snaketune.forkserver import call
from snaketune.schedule import split

p = snakemake.params
values, schedule = split(dict(p.values))
record = call(
    "snaketune.train:run_trial",
    study=p.study,
    trial_id=snakemake.wildcards.trial,
    values=values,
    schedule=schedule,
    settings=dict(p.settings),
    data_dir=snakemake.input[0],
    out_dir=os.path.dirname(snakemake.output.metrics),
    threads=snakemake.threads,
)
print(record)
