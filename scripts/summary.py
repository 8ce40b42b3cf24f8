# Snakemake adapter: summary.md, from the trial table, the best parameters and the final model's test.
from snaketune.workflow.joblog import start

start(snakemake)

from snaketune.core.forkserver import call_if_running

call_if_running(
    "snaketune.report.summary:write_summary",
    study=snakemake.params.study,
    trials_csv=snakemake.input.trials,
    best_json=snakemake.input.best,
    space_file=snakemake.input.space,
    objective=dict(snakemake.params.objective),
    out=snakemake.output[0],
    task=dict(snakemake.params.task),
    final_json=snakemake.input.get("final"),
    data_info=snakemake.params.data_info,
)
