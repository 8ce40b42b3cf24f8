# The search space: the YAML's hyperparameters plus those build_model(hp) asks for, found the
# way Keras Tuner finds them. A checkpoint, because trial ids derive from it; named by the
# key of the model (its code included) and the declared space.


checkpoint space:
    input:
        STUDY.model_inputs(),
    output:
        PLAN.space_file,
    params:
        model=STUDY.model_spec,
        declared=STUDY.config["space"],
    log:
        f"{OUT}/logs/space/{PLAN.space_key}.log",
    benchmark:
        f"{OUT}/benchmarks/space/{PLAN.space_key}.tsv"
    conda:
        ENV
    script:
        "../scripts/discover_space.py"
