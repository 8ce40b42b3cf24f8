# Snakemake adapter: a configuration's record, the mean over its fits.
from snaketune.workflow.joblog import start

start(snakemake)

from snaketune.trial.fits import write_record

record = write_record(
    metrics=list(snakemake.input.metrics),
    histories=list(snakemake.input.histories),
    names=list(snakemake.params.names),
    plan=snakemake.wildcards.plan,
    direction=snakemake.params.direction,
    out_metrics=snakemake.output.metrics,
    out_history=snakemake.output.history,
)
print(
    f"result: {record['status']}, {record['objective']} {record['objective_value']:.4f} "
    f"± {record['objective_std']:.4f} over {record['fits']} fits" + (f" ({record['error']})" if record["error"] else "")
)
