# Hyperband in rounds: round 0 of every bracket follows from the space; each later round is a
# checkpoint that promotes the best of the round before, whose trials then resume their
# parents' models as parallel jobs. Brackets run side by side.


localrules:
    hyperband_round,


checkpoint hyperband_round:
    input:
        metrics=previous_round_metrics,
        space=ancient(PLAN.space_file),
    output:
        f"{OUT}/hyperband/{{key}}/{{bracket}}/round_{{round}}.json",
    params:
        previous=previous_round,
        # what promotion depends on; `iterations` and `seed` only add or draw brackets
        config=lambda wildcards: PLAN.promotion_config,
        objective=PLAN.settings["objective"],
    log:
        f"{OUT}/logs/hyperband/{{key}}/{{bracket}}/round_{{round}}.log",
    conda:
        ENV
    script:
        "../scripts/promote_hyperband.py"
