# Snakemake adapter: discover the search space of the configured model and write space.json.
from snaketune.joblog import redirect

redirect(snakemake.log[0])

from snaketune.atomic import write_text
from snaketune.kt_space import discover
from snaketune.models import resolve
from snaketune.space import Space

space = discover(resolve(snakemake.params.model), Space.from_config(snakemake.params.declared))
write_text(snakemake.output[0], space.to_json() + "\n")
print(space.to_json())
