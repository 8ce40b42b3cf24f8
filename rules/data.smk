# The data set, prepared once on the submit host (it may need the network; compute nodes often
# have none) into memory-mappable arrays that every trial job loads in milliseconds, in a
# folder named by the key of the data settings (the file's content included).


localrules:
    data,


rule data:
    input:
        STUDY.data_inputs(),
    output:
        DATA_FILES,
    params:
        path=STUDY.config["data"]["path"],
        validation_split=STUDY.config["data"]["validation_split"],
        subset=STUDY.config["data"]["subset"],
        seed=STUDY.config["data"]["seed"],
    log:
        f"{OUT}/logs/data/{PLAN.data_key}.log",
    conda:
        ENV
    script:
        "../scripts/prepare_data.py"
