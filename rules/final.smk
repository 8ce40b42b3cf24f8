# The overall best configuration, retrained on training + validation data and tested once,
# in a folder named by its trial and a key of the final and training settings (a winner that
# changes back finds its final model there), then published as final/model.keras.


localrules:
    publish_final,


# What the final job does, for its message (a message is not a rerun trigger; a param is).
FINAL_STEPS = (
    f"first finds its best epoch on validation data (up to {STUDY.config['final']['epochs']}), then "
    "retrains on training + validation data for that many epochs"
    if STUDY.config["final"]["epochs"]
    else "retrains on training + validation data for the epochs at which the trial peaked"
)


rule final:
    input:
        data=ancient(PLAN.data_dir),
        # the configuration's record: the epoch at which it peaked
        trial=ancient(PLAN.record_file("{trial}")),
    output:
        metrics=PATHS.final_file("{trial}", "{fkey}", "test_metrics.json"),
        model=PATHS.final_file("{trial}", "{fkey}", "model.keras"),
    params:
        best=get_final_configuration,
        settings=PLAN.settings,
        max_epochs=STUDY.config["final"]["epochs"],
        learning_rate_decay=STUDY.config["final"]["learning_rate_decay"],
    message:
        f"final model: trial {{wildcards.trial}}, the best configuration, {FINAL_STEPS} and is tested "
        "once; progress in {log}"
    log:
        PATHS.final_log("{trial}", "{fkey}"),
    benchmark:
        PATHS.final_benchmark("{trial}", "{fkey}")
    threads: RESOURCES["trial_threads"]
    resources:
        # an epoch search up to final.epochs, then the retraining
        **training_resources(RESOURCES, 2 * (STUDY.config["final"]["epochs"] or PLAN.settings["epochs"])),
    conda:
        ENV
    script:
        "../scripts/final.py"


rule publish_final:
    input:
        unpack(get_final_model),
    output:
        metrics=PATHS.published_final[0],
        model=PATHS.published_final[1],
    log:
        PATHS.log("publish_final"),
    conda:
        ENV
    script:
        "../scripts/publish_final.py"
