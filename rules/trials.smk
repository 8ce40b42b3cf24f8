# One job per configuration, named by the hash of its values and training settings.


rule train:
    input:
        TRAIN_INPUT,
    output:
        metrics=f"{OUT}/trials/{{trial}}/metrics.csv",
        history=f"{OUT}/trials/{{trial}}/history.csv",
        model=f"{OUT}/trials/{{trial}}/model.keras",
    params:
        values=trial_values,
        settings=TRAIN_SETTINGS,
        study=STUDY.name,
    # the values only: another param (the strategies that proposed the trial, say) would make
    # Snakemake's params trigger retrain every trial cached before it
    message:
        "trial {wildcards.trial}: {params.values}; its result ends {log}"
    log:
        f"{OUT}/logs/trials/{{trial}}.log",
    benchmark:
        f"{OUT}/benchmarks/trials/{{trial}}.tsv"
    threads: RESOURCES["trial_threads"]
    # the longest trials first, so that no core idles while the last ones finish
    priority: trial_priority
    resources:
        **TRAINING_RESOURCES,
    conda:
        ENV
    script:
        "../scripts/train.py"
