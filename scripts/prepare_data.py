# Snakemake adapter: obtain the data set and lay it out for the trial jobs.
from snaketune.workflow.joblog import start

start(snakemake)

from snaketune.data.prepared import prepare
from snaketune.data.sources import from_config

data = dict(snakemake.params.data)
arrays, source, images, extra = from_config(data, snakemake.params.arrays_sha256)
where = f"data.path '{data['path']}'" if data["path"] else source
info = prepare(
    arrays,
    snakemake.output[0],
    validation_split=data["validation_split"],
    subset=data["subset"],
    seed=data["seed"],
    source=source,
    where=where,
    task=data["task"],
    images=images,
    extra=extra,
)
print(info)
