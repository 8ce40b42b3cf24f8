# Snakemake adapter: retrain the best configuration on training + validation data, test it once.
import json
import os
from pathlib import Path

from snaketune.joblog import redirect

redirect(snakemake.log[0])

from snaketune.final import retrain_and_test

best = json.loads(Path(snakemake.input.best).read_text())["overall"]
record = retrain_and_test(
    best={**dict(snakemake.params.best), "strategy": best["strategy"]},
    settings=dict(snakemake.params.settings),
    data_dir=os.path.dirname(snakemake.input.data[0]),
    model_path=snakemake.output.model,
    metrics_path=snakemake.output.metrics,
    threads=snakemake.threads,
)
print(record)
