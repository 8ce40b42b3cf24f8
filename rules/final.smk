# The overall best configuration, retrained on training + validation data and tested once.


rule final:
    input:
        # The best configuration is in params: the model retrains when it changes, not each
        # time a larger study rewrites best_params.json with the same winner.
        data=ancient(DATA_FILES),
        best=lambda wildcards: ancient(best_params_file(wildcards)),
    output:
        metrics=f"{OUT}/final/test_metrics.json",
        model=f"{OUT}/final/model.keras",
    params:
        best=best_overall,
        settings=PLAN.settings,
        max_epochs=STUDY.config["final"]["epochs"],
        learning_rate_decay=STUDY.config["final"]["learning_rate_decay"],
    log:
        f"{OUT}/logs/final.log",
    benchmark:
        f"{OUT}/benchmarks/final.tsv"
    threads: RESOURCES["trial_threads"]
    resources:
        # an epoch search up to final.epochs, then the retraining
        **training_resources(RESOURCES, 2 * (STUDY.config["final"]["epochs"] or PLAN.settings["epochs"])),
    conda:
        ENV
    script:
        "../scripts/final.py"
