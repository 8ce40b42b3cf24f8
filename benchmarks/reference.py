"""Reference workflows for the dry-run timings: what Snakemake itself costs for N jobs.

A dry run's time on this shared machine drifts by half over a day, and most of it is Snakemake's
own work per job. Timed beside snaketune's study, in the same run, two workflows without any
snaketune code say how much of the study's time is Snakemake's:

- `minimal`: N jobs of a rule with one output, a log and a shell command, gathered by one job;
  the least a dry run of N jobs can cost.
- `shaped`: N jobs of a rule with the directives of snaketune's `train` rule (an `ancient` data
  input, two outputs, log, benchmark, a per-job params function and constant params, threads,
  memory and runtime that grow with the attempt, conda, script), behind a checkpoint and
  gathered by one job, as the strategy table gathers the trials after the `space` checkpoint.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

MINIMAL = """\
N = {n}


rule all:
    input:
        "gathered.txt",


rule gather:
    input:
        expand("jobs/{{i}}.txt", i=range(N)),
    output:
        "gathered.txt",
    shell:
        "cat {{input}} > {{output}}"


rule job:
    output:
        "jobs/{{i}}.txt",
    log:
        "logs/{{i}}.log",
    shell:
        "touch {{output}} 2> {{log}}"
"""

SHAPED = """\
N = {n}
VALUES = {{f"{{i:012x}}": {{"learning_rate": 1e-4 + i * 1e-7}} for i in range(N)}}
SETTINGS = {{"epochs": 1, "seed": 0, "objective": "val_accuracy"}}


wildcard_constraints:
    trial="[0-9a-f]{{12}}",


rule all:
    input:
        "table.csv",


rule data:
    output:
        "data/info.json",
    shell:
        "echo {{{{}}}} > {{output}}"


checkpoint space:
    input:
        "data/info.json",
    output:
        "space.json",
    shell:
        "echo {{{{}}}} > {{output}}"


def trial_metrics(wildcards):
    checkpoints.space.get()
    return expand("trials/{{trial}}/metrics.csv", trial=VALUES)


rule table:
    input:
        metrics=trial_metrics,
        space="space.json",
    output:
        "table.csv",
    shell:
        "cat {{input.metrics}} > {{output}}"


def mem_mb(wildcards, attempt):
    return 1600 * attempt


def runtime(wildcards, attempt):
    return 10 * attempt


rule train:
    input:
        ancient("data/info.json"),
    output:
        metrics="trials/{{trial}}/metrics.csv",
        history="trials/{{trial}}/history.csv",
    params:
        values=lambda wildcards: VALUES[wildcards.trial],
        settings=SETTINGS,
        study="reference",
    log:
        "logs/trials/{{trial}}.log",
    benchmark:
        "benchmarks/trials/{{trial}}.tsv"
    threads: 1
    resources:
        mem_mb=mem_mb,
        runtime=runtime,
    conda:
        "environment.yml"
    script:
        "train.py"
"""

ENVIRONMENT = "channels: [conda-forge]\ndependencies: [python]\n"
TRAIN = "from pathlib import Path\n\nfor path in snakemake.output:\n    Path(path).touch()\n"


@dataclass(frozen=True)
class Reference:
    snakefile: str  # a template of n jobs
    job_rule: str  # the rule whose jobs stand for the study's `train` jobs
    files: dict = field(default_factory=dict)  # beside the Snakefile
    # built before the timed dry run, as the study's `data` and `space` jobs: the dry run then
    # sees every job behind the checkpoint
    prepare: tuple = ()


REFERENCES = {
    "minimal": Reference(MINIMAL, "job"),
    "shaped": Reference(SHAPED, "train", {"environment.yml": ENVIRONMENT, "train.py": TRAIN}, ("space.json",)),
}


def write(kind: str, workdir: Path, n: int) -> Path:
    """A reference workflow of n jobs in workdir; returns its Snakefile."""
    reference = REFERENCES[kind]
    workdir.mkdir(parents=True, exist_ok=True)
    snakefile = workdir / "Snakefile"
    snakefile.write_text(reference.snakefile.format(n=n))
    for name, text in reference.files.items():
        (workdir / name).write_text(text)
    return snakefile
