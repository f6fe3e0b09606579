# Fetch each dataset (verified by its sha256) and preprocess it once per distinct preprocessing.


# One download rule per dataset: its sha256 is part of the output's ensure().
for name, source in DATASETS.items():

    rule:
        name:
            f"download_{name}"
        output:
            ensure(wiring.raw_path(name, source), sha256=source["sha256"]),
        log:
            f"logs/download/{name}.log",
        localrule: True
        conda:
            "../../envs/genboost.yaml"
        resources:
            runtime=10,
            mem_mb=500,
        params:
            dataset=name,
            url=source["url"],
            member=source.get("member"),
            sha256=source["sha256"],
            local_copy=source.get("local_copy"),
            code=fingerprint.rule_code(workflow, "workflow/scripts/download.py"),
        script:
            "../scripts/download.py"


rule preprocess:
    input:
        lambda wildcards: wiring.preprocess_input(STUDY, DATASETS, wildcards.data),
    output:
        train=f"{R}/data/{{data}}/train.csv",
        test=f"{R}/data/{{data}}/test.csv",
        manifest=f"{R}/data/{{data}}/manifest.json",
    log:
        f"{R}/logs/preprocess/{{data}}.log",
    conda:
        "../../envs/genboost.yaml"
    resources:
        runtime=10,
        mem_mb=1000,
    params:
        # the experiment's preprocessing and its dataset's entry (whose sha256 is checked again)
        settings=lambda wildcards: STUDY.preprocessings()[wildcards.data],
        code=fingerprint.rule_code(workflow, "workflow/scripts/preprocess.py"),
    script:
        "../scripts/preprocess.py"
