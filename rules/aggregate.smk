# Each strategy's trials into a table (one job per strategy, so that one waiting for its next
# Bayesian round holds back no other), then all of them into one table, the best parameters,
# a summary and the plots.


localrules:
    strategy_table,
    aggregate,
    plots,


rule strategy_table:
    input:
        metrics=table_metrics,
        space=f"{OUT}/space.json",
    output:
        f"{OUT}/strategies/{{table}}.csv",
    params:
        strategy=lambda wildcards: PLAN.for_table(wildcards.table)[1],
        replicate=lambda wildcards: PLAN.for_table(wildcards.table)[0].replicate,
        membership=table_membership,
    log:
        f"{OUT}/logs/strategies/{{table}}.log",
    conda:
        ENV
    script:
        "../scripts/strategy_table.py"


checkpoint aggregate:
    input:
        tables=expand(f"{OUT}/strategies/{{table}}.csv", table=PLAN.tables()),
        space=f"{OUT}/space.json",
    output:
        trials=report(
            f"{OUT}/trials.csv", category="Summary", labels={"file": "all trials"}
        ),
        best=f"{OUT}/best_params.json",
        summary=report(
            f"{OUT}/summary.md", category="Summary", labels={"file": "summary"}
        ),
    params:
        study=STUDY.name,
        objective=PLAN.settings["objective"],
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
