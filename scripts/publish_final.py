# Snakemake adapter: publish the best configuration's final model as final/model.keras.
from snaketune.workflow.joblog import start

start(snakemake)

from snaketune.trial.final import publish

print(
    publish(
        metrics_path=snakemake.input.metrics,
        model_path=snakemake.input.model,
        metrics_out=snakemake.output.metrics,
        model_out=snakemake.output.model,
    )
)
