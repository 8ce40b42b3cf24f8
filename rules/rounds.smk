# Rounds of every strategy that learns from the trials before it (Bayesian, TPE, GP,
# Hyperband's promotions): each round is a checkpoint that reads the finished trials of the
# rounds before it in its series and proposes the next, which then trains as parallel jobs.
# Series run side by side (Hyperband's brackets). A round takes seconds: it runs on the host.


localrules:
    strategy_round,


checkpoint strategy_round:
    input:
        unpack(round_inputs),
    output:
        f"{OUT}/rounds/{{strategy}}/{{key}}/{{series}}/round_{{round}}.json",
    params:
        history=round_history,
        # what shapes the proposals: the budget only adds rounds or series
        config=lambda wildcards: PLAN.by_key(wildcards.key, wildcards.strategy).round_config(
            wildcards.strategy
        ),
        objective=PLAN.settings["objective"],
    message:
        "{wildcards.strategy} round {wildcards.round} ({wildcards.series}): proposing from the trials before it"
    log:
        f"{OUT}/logs/rounds/{{strategy}}/{{key}}/{{series}}/round_{{round}}.log",
    benchmark:
        f"{OUT}/benchmarks/rounds/{{strategy}}/{{key}}/{{series}}/round_{{round}}.tsv"
    conda:
        ENV
    script:
        "../scripts/propose_round.py"
