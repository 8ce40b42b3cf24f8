# Snakemake adapter: obtain the data set and lay it out for the trial jobs.
from snaketune.joblog import start

start(snakemake)

import os

from snaketune.data import obtain, prepare

p = snakemake.params
arrays, source = obtain(p.path)
info = prepare(arrays, os.path.dirname(snakemake.output[0]), p.validation_split, p.subset, p.seed, source,
               where=f"data.path '{p.path}'" if p.path else source)
print(info)
