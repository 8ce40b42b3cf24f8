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
        unpack(table_inputs),
    output:
        f"{OUT}/strategies/{{table}}/{{tkey}}.csv",
    params:
        strategy=lambda wildcards: PLAN.for_table(wildcards.table)[1],
        replicate=lambda wildcards: PLAN.for_table(wildcards.table)[0].replicate,
        membership=table_membership,
    log:
        f"{OUT}/logs/strategies/{{table}}/{{tkey}}.log",
    conda:
        ENV
    script:
        "../scripts/strategy_table.py"


checkpoint aggregate:
    input:
        tables=[PLAN.table_path(table) for table in PLAN.tables()],
        space=PLAN.space_file,
    output:
        trials=report(
            f"{OUT}/trials.csv", category="Summary", labels={"file": "all trials"}
        ),
        best=BEST_PARAMS,
        journal=f"{OUT}/optuna.journal",
        space=f"{OUT}/space.json",
        plan=PLAN.plan_file,
    params:
        objective=PLAN.settings["objective"],
        plan=PLAN.record(),
    log:
        f"{OUT}/logs/aggregate.log",
    conda:
        ENV
    script:
        "../scripts/aggregate.py"


rule plots:
    input:
        trials=f"{OUT}/trials.csv",
        space=f"{OUT}/space.json",
    output:
        [report(p, category="Plots") for p in PLOTS],
    params:
        objective=PLAN.settings["objective"],
    log:
        f"{OUT}/logs/plots.log",
    conda:
        ENV
    script:
        "../scripts/plots.py"


rule summary:
    input:
        unpack(summary_inputs),
    output:
        report(f"{OUT}/summary.md", category="Summary", labels={"file": "summary"}),
    params:
        study=STUDY.name,
        objective=PLAN.settings["objective"],
        task={
            "name": STUDY.task,
            "how": "stated in data.task" if STUDY.config["data"]["task"] else "inferred from the targets",
        },
        # read for the validation set's size; the trials' input already
        data_info=f"{PLAN.data_dir}/info.json",
    log:
        f"{OUT}/logs/summary.log",
    conda:
        ENV
    script:
        "../scripts/summary.py"
