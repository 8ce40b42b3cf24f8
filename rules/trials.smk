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


# Several fits per configuration (training.executions_per_trial, training.folds): each fit a
# job of its own in a folder under its trial's (the first execution of a study without folds
# is the trial itself, above), and the configuration's record their mean (snaketune.trial.fits).
rule train_fit:
    input:
        TRAIN_INPUT,
    output:
        metrics=PATHS.fit_file("{trial}", "{fit}", "metrics.csv"),
        history=PATHS.fit_file("{trial}", "{fit}", "history.csv"),
        model=PATHS.fit_file("{trial}", "{fit}", "model.keras"),
    params:
        values=get_trial_values,
        settings=TRAIN_SETTINGS,
        study=STUDY.name,
    message:
        "trial {wildcards.trial}, fit {wildcards.fit}: {params.values}; its result ends {log}"
    log:
        PATHS.fit_log("{trial}", "{fit}"),
    benchmark:
        PATHS.fit_benchmark("{trial}", "{fit}")
    threads: RESOURCES["trial_threads"]
    priority: get_trial_priority
    resources:
        **TRAINING_RESOURCES,
    conda:
        ENV
    script:
        "../scripts/train.py"


# A record takes milliseconds: it runs on the host.
localrules:
    combine_fits,


rule combine_fits:
    input:
        unpack(get_combine_inputs),
    output:
        metrics=PATHS.record_file("{trial}", "{plan}", "metrics.csv"),
        history=PATHS.record_file("{trial}", "{plan}", "history.csv"),
    params:
        names=[fit.name for fit in STUDY.fits],
        direction=STUDY.objective.direction,
    log:
        PATHS.record_log("{trial}", "{plan}"),
    conda:
        ENV
    script:
        "../scripts/combine_fits.py"
