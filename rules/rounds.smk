# Rounds of every strategy that learns from the trials before it (Bayesian, TPE, GP,
# Hyperband's promotions): each round is a checkpoint that reads the finished trials of the
# rounds before it in its series and proposes the next, which then trains as parallel jobs.
# Series run side by side (Hyperband's brackets). A round takes seconds: it runs on the host.


localrules:
    strategy_round,


checkpoint strategy_round:
    input:
        unpack(get_round_inputs),
    output:
        PATHS.round_file("{strategy}", "{key}", "{series}", "{round}"),
    params:
        history=get_round_history,
        # what shapes the proposals: the budget only adds rounds or series
        config=lambda wildcards: PLAN.by_key(wildcards.key, wildcards.strategy).round_config(
            wildcards.strategy
        ),
        objective=PLAN.settings["objective"],
    message:
        "{wildcards.strategy} round {wildcards.round} ({wildcards.series}): proposing from the trials before it"
    log:
        PATHS.round_log("{strategy}", "{key}", "{series}", "{round}"),
    benchmark:
        PATHS.round_benchmark("{strategy}", "{key}", "{series}", "{round}")
    conda:
        ENV
    script:
        "../scripts/propose_round.py"
