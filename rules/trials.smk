# One job per configuration, named by the hash of its values and training settings.


rule train:
    input:
        trial_inputs,
    output:
        metrics=f"{OUT}/trials/{{trial}}/metrics.csv",
        history=f"{OUT}/trials/{{trial}}/history.csv",
    params:
        # sorted: Snakemake compares params as text, and the values' order carries no meaning
        values=lambda wildcards: dict(sorted(PLAN.values_of(wildcards.trial).items())),
        settings=lambda wildcards: PLAN.settings_of(wildcards.trial),
        study=STUDY.name,
    log:
        f"{OUT}/logs/trials/{{trial}}.log",
    benchmark:
        f"{OUT}/benchmarks/trials/{{trial}}.tsv"
    threads: RESOURCES["trial_threads"]
    resources:
        **training_resources(RESOURCES, PLAN.max_trial_epochs),
    conda:
        ENV
    script:
        "../scripts/train.py"
