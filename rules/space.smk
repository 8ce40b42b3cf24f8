# The search space: the YAML's hyperparameters plus those build_model(hp) asks for, found the
# way Keras Tuner finds them. A checkpoint, because trial ids derive from it.


checkpoint space:
    input:
        STUDY.model_inputs(),
    output:
        f"{OUT}/space.json",
    params:
        model=STUDY.model_spec,
        declared=STUDY.config["space"],
    log:
        f"{OUT}/logs/space.log",
    benchmark:
        f"{OUT}/benchmarks/space.tsv"
    conda:
        ENV
    script:
        "../scripts/discover_space.py"
