# Every trial of every strategy into one table, the best parameters, a summary and plots.


localrules:
    aggregate,
    plots,


checkpoint aggregate:
    input:
        **trial_files("metrics.csv"),
        space=f"{OUT}/space.json",
    output:
        trials=report(f"{OUT}/trials.csv", category="Summary", labels={"file": "all trials"}),
        best=f"{OUT}/best_params.json",
        summary=report(f"{OUT}/summary.md", category="Summary", labels={"file": "summary"}),
    params:
        membership=lambda wildcards: membership(),
        study=STUDY.name,
        strategies=STUDY.enabled_strategies,
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
        **trial_files("history.csv"),
    output:
        [report(p, category="Plots") for p in PLOTS],
    params:
        objective=PLAN.settings["objective"],
        strategies=STUDY.enabled_strategies,
    log:
        f"{OUT}/logs/plots.log",
    conda:
        ENV
    script:
        "../scripts/plots.py"
