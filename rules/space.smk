# The search space: the YAML's hyperparameters plus those the model's build(hp) asks for, and
# a HyperModel's fit(hp, ...) on a few samples of the data, found the way Keras Tuner finds
# them. A checkpoint, because trial ids derive from it; named by the key of the model (its
# code included), the declared space and, for a HyperModel, the data.


checkpoint space:
    input:
        model=STUDY.model_inputs(),
        data=[ancient(PLAN.data_dir)] if STUDY.model_spec.get("hypermodel") else [],
    output:
        PLAN.space_file,
    params:
        model=STUDY.model_spec,
        declared=STUDY.config["space"],
    log:
        PATHS.space_log(PLAN.space_key),
    benchmark:
        PATHS.space_benchmark(PLAN.space_key)
    # the trials' threads: Snakemake sets OMP_NUM_THREADS and the like to a job's threads, which
    # TensorFlow reads on import, so only then do the trials use the fork server this job starts
    threads: RESOURCES["trial_threads"]
    conda:
        ENV
    script:
        "../scripts/discover_space.py"
