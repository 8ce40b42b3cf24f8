# One job per configuration, named by the hash of its values and training settings.


rule train:
    input:
        TRAIN_INPUT,
    output:
        metrics=PATHS.trial_file("{trial}", "metrics.csv"),
        history=PATHS.trial_file("{trial}", "history.csv"),
        model=PATHS.trial_file("{trial}", "model.keras"),
    params:
        values=get_trial_values,
        settings=TRAIN_SETTINGS,
        study=STUDY.name,
    # the values only: another param (the strategies that proposed the trial, say) would make
    # Snakemake's params trigger retrain every trial cached before it
    message:
        "trial {wildcards.trial}: {params.values}; its result ends {log}"
    log:
        PATHS.trial_log("{trial}"),
    benchmark:
        PATHS.trial_benchmark("{trial}")
    threads: RESOURCES["trial_threads"]
    # the longest trials first, so that no core idles while the last ones finish
    priority: get_trial_priority
    resources:
        **TRAINING_RESOURCES,
    conda:
        ENV
    script:
        "../scripts/train.py"
