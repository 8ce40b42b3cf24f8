# Each strategy's trials into a table (one job per strategy, so that one waiting for its next
# Bayesian round holds back no other), then all of them into one table, the best parameters,
# a summary and the plots. A table is named by a key of what decides its trials, and the
# aggregate writes a marker named by the key of the whole plan: a changed plan is seen from
# the files alone.


localrules:
    strategy_table,
    aggregate,
    summary,
    plots,


rule strategy_table:
    input:
        unpack(get_table_inputs),
    output:
        PATHS.table_file("{table}", "{tkey}"),
    params:
        strategy=lambda wildcards: PLAN.for_table(wildcards.table)[1],
        replicate=lambda wildcards: PLAN.for_table(wildcards.table)[0].replicate,
        membership=get_table_membership,
    log:
        PATHS.table_log("{table}", "{tkey}"),
    conda:
        ENV
    script:
        "../scripts/strategy_table.py"


checkpoint aggregate:
    input:
        tables=[PLAN.table_path(table) for table in PLAN.tables()],
        space=PLAN.space_file,
    output:
        trials=report(PATHS.trials_csv, category="Summary", labels={"file": "all trials"}),
        best=PATHS.best_params,
        journal=PATHS.journal,
        space=PATHS.space_json,
        plan=PLAN.plan_file,
    params:
        objective=PLAN.settings["objective"],
        plan=PLAN.record(),
    log:
        PATHS.log("aggregate"),
    conda:
        ENV
    script:
        "../scripts/aggregate.py"


rule plots:
    input:
        trials=PATHS.trials_csv,
        space=PATHS.space_json,
    output:
        [report(p, category="Plots") for p in PATHS.plots],
    params:
        objective=PLAN.settings["objective"],
    log:
        PATHS.log("plots"),
    conda:
        ENV
    script:
        "../scripts/plots.py"


rule summary:
    input:
        unpack(get_summary_inputs),
    output:
        report(PATHS.summary, category="Summary", labels={"file": "summary"}),
    params:
        study=STUDY.name,
        objective=PLAN.settings["objective"],
        task={
            "name": STUDY.task,
            "how": "stated in data.task" if STUDY.config["data"]["task"] else "inferred from the targets",
        },
        # read for the validation set's size; the trials' input already
        data_info=PATHS.data_info(PLAN.data_key),
    log:
        PATHS.log("summary"),
    conda:
        ENV
    script:
        "../scripts/summary.py"
