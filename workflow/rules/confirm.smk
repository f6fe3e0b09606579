# The confirmation stage: once an experiment's grid (and its second chance's) is trained, the checkpoint
# writes the two configurations each claim part selects; each distinct one trains on the fresh seeds as one
# ordinary train job (the same script, store and resources; no measures); their models make fresh.csv, from
# which the reports judge the claims.


checkpoint select:
    input:
        unpack(
            lambda wildcards: wiring_confirm.select_inputs(
                STUDY, PARTS, CONFIRMED, wildcards.experiment
            )
        ),
    output:
        wiring_confirm.selected_path(R, "{experiment}"),
    log:
        wiring.log_path(R, "{experiment}", "select"),
    wildcard_constraints:
        experiment=wiring.one_of(CONFIRMED),
    # before the measure jobs (wiring_measure.MEASURE_PRIORITY) that may be waiting with it: the fresh models wait for it
    priority: 1000
    localrule: True
    conda:
        "../../envs/genboost.yaml"
    resources:
        runtime=10,
        mem_mb=1000,
    params:
        grids=lambda wildcards: wiring_confirm.select_grids(
            STUDY, CONFIRMED, wildcards.experiment
        ),
    script:
        "../scripts/select.py"


for exp in wiring_confirm.confirm_sources(STUDY, CONFIRMED):

    rule:
        name:
            f"fresh_{exp.name}"
        input:
            **wiring.data_paths(exp, R),
        output:
            job=wiring_confirm.fresh_job(exp, R),
        log:
            wiring_confirm.fresh_job_log(exp, R),
        priority: partial(wiring_confirm.fresh_priority, STUDY, exp)
        conda:
            "../../envs/genboost.yaml"
        threads: wiring.job_threads(exp)
        resources:
            **wiring.job_resources(exp),
        params:
            experiment=exp.name,
            cells=partial(wiring_confirm.fresh_params, STUDY, exp),
            metrics=partial(wiring_confirm.fresh_metrics, STUDY, exp, R),
            curve_every=exp.train["curve_every"],
        script:
            "../scripts/train.py"


rule confirm:
    input:
        jobs=lambda wildcards: wiring_confirm.fresh_jobs(
            checkpoints, STUDY, R, wildcards.experiment
        ),
        test_data=lambda wildcards: wiring.data_paths(
            STUDY.experiment(wildcards.experiment), R
        )["test"],
    output:
        wiring_confirm.fresh_path(R, "{experiment}"),
    log:
        wiring.log_path(R, "{experiment}", "confirm"),
    wildcard_constraints:
        experiment=wiring.one_of(CONFIRMED),
    priority: wiring.REPORT_PRIORITY
    localrule: True
    conda:
        "../../envs/genboost.yaml"
    resources:
        runtime=10,
        mem_mb=1000,
    params:
        experiment=lambda wildcards: wildcards.experiment,
    script:
        "../scripts/confirm.py"
