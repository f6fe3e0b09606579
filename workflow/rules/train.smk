# Train each job's cells (or take them from the store), then measure the trained models from their stored
# weights: measuring is its own step, so changing how a model is measured never retrains it. A job is named by
# its pack and part (genboost/config/packing.py) and writes one job file, which is all that later rules read
# (so planning grows with the jobs, not the models), besides each cell's metrics.json.


for exp in STUDY.experiments:

    rule:
        name:
            f"train_{exp.name}"
        input:
            **wiring.data_paths(exp, R),
            # the jobs of shorter runs of its cells in the experiment it continues, whose end states it goes on from
            shorter_runs=lambda wildcards, exp=exp: wiring.job_inputs(
                LINEAGE, exp, packing.job_cells(exp, dict(wildcards)), PARTS
            ),
        output:
            job=wiring.job_file(exp, R),
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
            cells=partial(wiring.job_params, exp),
            metrics=partial(wiring.job_metrics, exp, R),
            curve_every=exp.train["curve_every"],
        script:
            "../scripts/train.py"

    # One model asked for by its metrics.json (README: Running a subset): taken from the store, else trained
    # alone, to the same numbers as in its job. No other rule reads these files.
    rule:
        name:
            f"model_{exp.name}"
        input:
            **wiring.data_paths(exp, R),
            shorter_runs=lambda wildcards, exp=exp: wiring.job_inputs(
                LINEAGE, exp, [wiring.model_cell(exp, wildcards)], PARTS
            ),
        output:
            wiring.model_output(exp, R),
        log:
            wiring.model_log(exp, R),
        conda:
            "../../envs/genboost.yaml"
        threads: wiring.job_threads(exp)
        resources:
            **wiring.job_resources(exp),
        params:
            experiment=exp.name,
            cells=lambda wildcards, exp=exp: [
                wiring.model_cell(exp, wildcards).to_dict()
            ],
            metrics=lambda wildcards, output: [output[0]],
            curve_every=exp.train["curve_every"],
        script:
            "../scripts/train.py"

    # A measure job measures a run of train jobs (wiring_measure.measure_parts): an edit that remeasures every
    # model starts as few processes as fill the cores.
    if measured(STUDY.analysis):

        rule:
            name:
                f"measure_{exp.name}"
            input:
                **wiring.data_paths(exp, R),
                jobs=partial(wiring_measure.measured_job_files, exp, R, PARTS[exp.name]),
            output:
                job=wiring_measure.measure_file(exp, R),
            log:
                wiring_measure.measure_log(exp, R),
            priority: wiring_measure.MEASURE_PRIORITY
            conda:
                "../../envs/genboost.yaml"
            resources:
                **wiring_measure.measure_resources(exp, PARTS[exp.name], PLAN_CORES),
            params:
                experiment=exp.name,
                metrics=partial(
                    wiring_measure.measured_metrics, exp, R, PARTS[exp.name]
                ),
                measures=partial(
                    wiring_measure.measured_metrics,
                    exp,
                    R,
                    PARTS[exp.name],
                    name="measures.json",
                ),
                analysis=STUDY.analysis,
            script:
                "../scripts/measure.py"
