# The data set, prepared once on the submit host (it may need the network; compute nodes often
# have none) into memory-mappable arrays that every trial job loads in milliseconds, in a
# folder named by the key of the data settings (the file's content included).


localrules:
    data,


rule data:
    input:
        STUDY.data_inputs(),
    output:
        directory(PLAN.data_dir),
    params:
        data=STUDY.config["data"],
        arrays_sha256=PLAN.settings["data"].get("arrays_sha256"),
    log:
        PATHS.data_log(PLAN.data_key),
    conda:
        ENV
    script:
        "../scripts/prepare_data.py"
