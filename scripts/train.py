# Snakemake adapter: train one trial.
import os

from snaketune.joblog import start

start(snakemake)

from snaketune.devices import run_training
from snaketune.schedule import split

p = snakemake.params
# what the console's one-line message leaves out: what this attempt was given (memory and
# runtime double on a retry)
print(f"resources: mem_mb={snakemake.resources.get('mem_mb')}, runtime={snakemake.resources.get('runtime')} min, "
      f"threads={snakemake.threads}", flush=True)
values, schedule = split(dict(p.values))
record = run_training(
    "snaketune.train:run_trial",
    snakemake.resources,
    study=p.study,
    trial_id=snakemake.wildcards.trial,
    values=values,
    schedule=schedule,
    settings=dict(p.settings),
    data_dir=snakemake.input[0],
    out_dir=os.path.dirname(snakemake.output.metrics),
    threads=snakemake.threads,
)
print(record)
# the log's last line: the trial's result, for a reader of the console's "its result ends <log>"
print(f"result: {record['status']}, {record['objective']} {record['objective_value']:.4f} at epoch "
      f"{record['objective_epoch']}, {record['fit_seconds']:.1f} s of fitting"
      + (f" ({record['error']})" if record["error"] else ""))
