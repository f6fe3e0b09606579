# Fetch each dataset (verified by its sha256) and preprocess it once per distinct preprocessing.


# One download rule per dataset: its CSV's file name is its own (a zip's member, its url's file, or without url
# its local copy's), and its log is named by the dataset alone.
for name, source in DATASETS.items():

    rule:
        name:
            f"download_{name}"
        output:
            # update: a CSV already there (put by hand, or fetched for another results folder) is not deleted
            # before the job runs, and is restored if the job fails
            update(ensure(wiring.raw_path(name, source), sha256=source["sha256"])),
        log:
            wiring.log_path(R, "download", name),
        localrule: True
        conda:
            "../../envs/genboost.yaml"
        resources:
            runtime=10,
            mem_mb=500,
        params:
            dataset=name,
            url=source.get("url"),
            member=source.get("member"),
            sha256=source["sha256"],
            local_copy=source.get("local_copy"),
        script:
            "../scripts/download.py"


rule preprocess:
    input:
        lambda wildcards: wiring.preprocess_input(STUDY, DATASETS, wildcards.data),
    output:
        **wiring.split_paths(R, "{data}"),
    log:
        wiring.log_path(R, "preprocess", "{data}"),
    localrule: True
    conda:
        "../../envs/genboost.yaml"
    resources:
        runtime=10,
        mem_mb=1000,
    params:
        # the experiment's preprocessing and its dataset's entry (whose sha256 is checked again)
        settings=lambda wildcards: STUDY.preprocessings()[wildcards.data],
    script:
        "../scripts/preprocess.py"
