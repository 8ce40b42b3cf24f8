# One job per configuration, named by the hash of its values and training settings.


rule train:
    input:
        # Content-addressed: the trial id already covers the data settings, so rewriting
        # the prepared arrays (a rerun of `data`) must not retrain every cached trial.
        # info.json alone stands for them all: `data` writes it last, and one input instead
        # of seven per trial makes the DAG of a 10,000-trial study build markedly faster.
        ancient(f"{PLAN.data_dir}/info.json"),
    output:
        metrics=f"{OUT}/trials/{{trial}}/metrics.csv",
        history=f"{OUT}/trials/{{trial}}/history.csv",
    params:
        # sorted: Snakemake compares params as text, and the values' order carries no meaning
        values=lambda wildcards: dict(sorted(PLAN.values_of(wildcards.trial).items())),
        settings=PLAN.settings,
        study=STUDY.name,
    log:
        f"{OUT}/logs/trials/{{trial}}.log",
    benchmark:
        f"{OUT}/benchmarks/trials/{{trial}}.tsv"
    threads: RESOURCES["trial_threads"]
    resources:
        **training_resources(RESOURCES, PLAN.settings["epochs"]),
    conda:
        ENV
    script:
        "../scripts/train.py"
