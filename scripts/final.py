# Snakemake adapter: retrain the best configuration on training + validation data, test it once.
from snaketune.workflow.joblog import start

start(snakemake)

from snaketune.trial.launch import run_training

record = run_training(
    "snaketune.trial.final:retrain_and_test",
    snakemake.resources,
    best=dict(snakemake.params.best),
    settings=dict(snakemake.params.settings),
    data_dir=snakemake.input.data,
    model_path=snakemake.output.model,
    metrics_path=snakemake.output.metrics,
    max_epochs=snakemake.params.max_epochs,
    learning_rate_decay=snakemake.params.learning_rate_decay,
    threads=snakemake.threads,
)
print(record)
