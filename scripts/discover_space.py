# Snakemake adapter: discover the search space of the configured model and write space.json.
from snaketune.joblog import redirect

redirect(snakemake.log[0])

from snaketune.atomic import write_text
from snaketune.models import discover_space

space = discover_space(snakemake.params.model, snakemake.params.declared)
write_text(snakemake.output[0], space.to_json() + "\n")
print(space.to_json())
