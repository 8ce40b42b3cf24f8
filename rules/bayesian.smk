# Bayesian optimisation in rounds: each round is a checkpoint that learns from every trial of
# the rounds before it and proposes the next batch, which then trains as parallel jobs.


checkpoint bayesian_round:
    input:
        unpack(bayesian_history),
        space=ancient(PLAN.space_file),
    output:
        f"{OUT}/bayesian/{{key}}/round_{{round}}.json",
    params:
        config=lambda wildcards: PLAN.by_key(wildcards.key).proposal_config,
        objective=PLAN.settings["objective"],
    log:
        f"{OUT}/logs/bayesian/{{key}}/round_{{round}}.log",
    benchmark:
        f"{OUT}/benchmarks/bayesian/{{key}}/round_{{round}}.tsv"
    conda:
        ENV
    script:
        "../scripts/propose_bayesian.py"
