# Snakemake adapter: discover the search space of the configured model and write space.json.
from snaketune.workflow.joblog import start

start(snakemake)

from snaketune.core.atomic import write_text
from snaketune.trial.space_job import space_for_job

space = space_for_job(
    model_spec=dict(snakemake.params.model),
    declared=dict(snakemake.params.declared),
    data_dir=snakemake.input.data[0] if snakemake.input.data else None,
)
write_text(snakemake.output[0], space.to_json() + "\n")
print(space.to_json())
