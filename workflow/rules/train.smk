# Train each job's cells (or take them from the store), then measure the trained models from their stored
# weights: measuring is its own step, so changing how a model is measured never retrains it.


for exp in STUDY.experiments:

    rule:
        name:
            f"train_{exp.name}"
        input:
            **wiring.data_paths(exp, R),
            # shorter runs of its cells in earlier experiments, whose end states it goes on from
            shorter_runs=lambda wildcards, exp=exp: wiring.job_inputs(
                LINEAGE, exp, wildcards
            ),
        output:
            wiring.job_outputs(exp, R),
        log:
            wiring.job_log(exp, R),
        priority: lambda wildcards, exp=exp: wiring.job_priority(LINEAGE, exp, wildcards)
        conda:
            "../../envs/genboost.yaml"
        threads: wiring.job_threads(exp)
        resources:
            **wiring.job_resources(exp),
        params:
            experiment=exp.name,
            cells=partial(wiring.job_params, exp, R),
            curve_every=exp.train["curve_every"],
            code=fingerprint.rule_code(workflow, "workflow/scripts/train.py"),
        script:
            "../scripts/train.py"

    if measured(STUDY.analysis):

        rule:
            name:
                f"measure_{exp.name}"
            input:
                **wiring.data_paths(exp, R),
                metrics=wiring.job_outputs(exp, R),
            output:
                wiring.job_outputs(exp, R, "measures.json"),
            log:
                wiring.job_log(exp, R, "measure"),
            conda:
                "../../envs/genboost.yaml"
            resources:
                **wiring.measure_resources(exp),
            params:
                experiment=exp.name,
                analysis=STUDY.analysis,
                code=fingerprint.rule_code(workflow, "workflow/scripts/measure.py"),
            script:
                "../scripts/measure.py"
