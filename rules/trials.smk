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
        label=trial_label,
    message:
        "trial {wildcards.trial} ({params.label}); its result ends {log}"
    log:
        f"{OUT}/logs/trials/{{trial}}.log",
    benchmark:
        f"{OUT}/benchmarks/trials/{{trial}}.tsv"
    threads: RESOURCES["trial_threads"]
    resources:
        **TRAINING_RESOURCES,
    conda:
        ENV
    script:
        "../scripts/train.py"
