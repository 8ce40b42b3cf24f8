# snaketune: a hyperparameter-tuning study of a Keras model as a Snakemake workflow.
# This file only sets up and includes the rules; the logic is in the `snaketune` package.
from snakemake.utils import min_version

min_version("9.0")


report: "report/workflow.rst"


include: "rules/common.smk"  # reads and checks the config first
include: "rules/data.smk"
include: "rules/space.smk"
include: "rules/trials.smk"
include: "rules/rounds.smk"
include: "rules/aggregate.smk"
include: "rules/final.smk"


rule all:
    input:
        PLAN.study_outputs(rebuild=MISSING),
    default_target: True
