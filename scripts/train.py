# Snakemake adapter: train one trial.
import os

from snaketune.workflow.joblog import start

start(snakemake)

from snaketune.search.schedule import split
from snaketune.trial.launch import run_training
from snaketune.trial.outcome import read_record
from snaketune.workflow import attempts

p = snakemake.params
out_dir = os.path.dirname(snakemake.output.metrics)
names = [os.path.basename(path) for path in snakemake.output]
# what the console's one-line message leaves out: what this attempt was given (memory and
# runtime double on a retry)
print(
    f"resources: mem_mb={snakemake.resources.get('mem_mb')}, runtime={snakemake.resources.get('runtime')} min, "
    f"threads={snakemake.threads}",
    flush=True,
)
attempt = snakemake.resources.get("attempt", 1)
if attempt > 1 and attempts.restore(out_dir, names):
    # a retry of a bundle of trials in which this one had finished (snaketune/workflow/attempts.py)
    print("kept: trained by an earlier attempt of this job, not trained again")
    record = read_record(snakemake.output.metrics)
    record.update(objective_value=float(record["objective_value"] or "nan"), fit_seconds=float(record["fit_seconds"]))
else:
    if attempt == 1:
        attempts.forget(out_dir)
    values, schedule = split(dict(p.values))
    record = run_training(
        "snaketune.trial.train:run_trial",
        snakemake.resources,
        study=p.study,
        trial_id=snakemake.wildcards.trial,
        values=values,
        schedule=schedule,
        settings=dict(p.settings),
        data_dir=snakemake.input[0],
        out_dir=out_dir,
        threads=snakemake.threads,
        fit_name=snakemake.wildcards.get("fit"),
    )
    print(record)
    attempts.keep(out_dir, names)
# the log's last line: the trial's result, for a reader of the console's "its result ends <log>"
print(
    f"result: {record['status']}, {record['objective']} {record['objective_value']:.4f} at epoch "
    f"{record['objective_epoch']}, {record['fit_seconds']:.1f} s of fitting"
    + (f" ({record['error']})" if record["error"] else "")
)
