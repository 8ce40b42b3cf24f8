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
        trial=ancient(f"{OUT}/trials/{{trial}}/metrics.csv"),
    output:
        metrics=f"{OUT}/final/{{trial}}/{{fkey}}/test_metrics.json",
        model=f"{OUT}/final/{{trial}}/{{fkey}}/model.keras",
    params:
        best=final_configuration,
        settings=PLAN.settings,
        max_epochs=STUDY.config["final"]["epochs"],
        learning_rate_decay=STUDY.config["final"]["learning_rate_decay"],
    message:
        f"final model: trial {{wildcards.trial}}, the best configuration, {FINAL_STEPS} and is tested "
        "once; progress in {log}"
    log:
        f"{OUT}/logs/final/{{trial}}/{{fkey}}.log",
    benchmark:
        f"{OUT}/benchmarks/final/{{trial}}/{{fkey}}.tsv"
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
        unpack(final_model),
    output:
        metrics=FINAL_OUTPUTS[0],
        model=FINAL_OUTPUTS[1],
    log:
        f"{OUT}/logs/publish_final.log",
    conda:
        ENV
    script:
        "../scripts/publish_final.py"
