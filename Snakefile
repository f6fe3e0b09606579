# genboost: download -> preprocess -> train (one job per cell or per pack of cells) -> tables -> summary.
# This file only wires rules; all logic lives in the genboost package.
from snakemake.utils import min_version, validate

from genboost import fingerprint, grid, resume

min_version("9.0")


configfile: "config.yaml"


validate(config, "workflow/schemas/config.schema.yaml")
STUDY = grid.Study.from_config(config)
LINEAGE = resume.Lineage(STUDY)
R = STUDY.results
DATA = f"{R}/data"
RAW = f"resources/{config['data']['member']}"
CURVES = STUDY.analysis["curve_every"] is not None


report: "workflow/report/workflow.rst"


wildcard_constraints:
    **grid.wildcard_constraints(),


localrules:
    all,
    download,
    summary,


rule all:
    input:
        f"{R}/summary.md",
        [grid.table_paths(R, e) for e in STUDY.experiments],
        [grid.figure_paths(R, e.name, CURVES).values() for e in STUDY.experiments],


rule download:
    output:
        ensure(RAW, sha256=config["data"]["sha256"]),
    log:
        "logs/download.log",
    conda:
        "envs/genboost.yaml"
    resources:
        runtime=10,
        mem_mb=500,
    params:
        url=config["data"]["url"],
        member=config["data"]["member"],
        sha256=config["data"]["sha256"],
        local_copy=config["data"].get("local_copy"),
        code=fingerprint.rule_code(workflow, "workflow/scripts/download.py"),
    script:
        "workflow/scripts/download.py"


rule preprocess:
    input:
        RAW,
    output:
        train=f"{DATA}/train.csv",
        test=f"{DATA}/test.csv",
        manifest=f"{DATA}/manifest.json",
    log:
        f"{R}/logs/preprocess.log",
    conda:
        "envs/genboost.yaml"
    resources:
        runtime=10,
        mem_mb=1000,
    params:
        drop_columns=config["preprocess"]["drop_columns"],
        test_fraction=config["preprocess"]["test_fraction"],
        split_seed=config["preprocess"]["split_seed"],
        code=fingerprint.rule_code(workflow, "workflow/scripts/preprocess.py"),
    script:
        "workflow/scripts/preprocess.py"


for exp in STUDY.experiments:

    rule:
        name:
            f"train_{exp.name}"
        input:
            train=f"{DATA}/train.csv",
            test=f"{DATA}/test.csv",
            # shorter runs of its cells in earlier experiments, whose end states it goes on from
            shorter_runs=lambda wildcards, exp=exp: LINEAGE.job_inputs(exp, wildcards),
        output:
            exp.job_outputs(R),
        log:
            exp.job_log(R),
        priority: lambda wildcards, exp=exp: LINEAGE.job_priority(exp, wildcards)
        conda:
            "envs/genboost.yaml"
        threads: exp.job_threads()
        resources:
            **exp.job_resources(),
        params:
            experiment=exp.name,
            cells=exp.job_params,
            analysis=STUDY.analysis,
            code=fingerprint.rule_code(workflow, "workflow/scripts/train.py"),
        script:
            "workflow/scripts/train.py"

    rule:
        name:
            f"aggregate_{exp.name}"
        input:
            [exp.metrics_path(R, c) for c in exp.cells()],
        output:
            cells=report(
                f"{R}/{exp.name}/cells.csv",
                caption="workflow/report/cells.rst",
                category="Cells",
                subcategory=exp.name,
            ),
            tables=[
                (
                    report(
                        t,
                        caption="workflow/report/table.rst",
                        category="Tables",
                        subcategory=exp.name,
                    )
                    if t.endswith(".csv")
                    else t
                )
                for t in grid.table_paths(R, exp)
            ],
        log:
            f"{R}/logs/{exp.name}/aggregate.log",
        conda:
            "envs/genboost.yaml"
        resources:
            runtime=10,
            mem_mb=1000,
        params:
            experiment=exp.name,
            code=fingerprint.rule_code(workflow, "workflow/scripts/aggregate.py"),
        script:
            "workflow/scripts/aggregate.py"


for exp in STUDY.experiments:

    rule:
        name:
            f"figures_{exp.name}"
        input:
            metrics=[exp.metrics_path(R, c) for c in exp.cells()],
        output:
            **{
                k: (
                    report(
                        v,
                        caption="workflow/report/figure.rst",
                        category="Figures",
                        subcategory=exp.name,
                    )
                    if v.endswith(".png")
                    else v
                )
                for k, v in grid.figure_paths(R, exp.name, CURVES).items()
            },
        log:
            f"{R}/logs/{exp.name}/figures.log",
        conda:
            "envs/genboost.yaml"
        resources:
            runtime=10,
            mem_mb=1000,
        params:
            experiment=exp.name,
            code=fingerprint.rule_code(workflow, "workflow/scripts/figures.py"),
        script:
            "workflow/scripts/figures.py"


rule summary:
    input:
        cells=[f"{R}/{e.name}/cells.csv" for e in STUDY.experiments],
    output:
        report(
            f"{R}/summary.md",
            caption="workflow/report/summary.rst",
            category="Summary",
        ),
    log:
        f"{R}/logs/summary.log",
    conda:
        "envs/genboost.yaml"
    params:
        experiments=[e.name for e in STUDY.experiments],
        code=fingerprint.rule_code(workflow, "workflow/scripts/summary.py"),
    script:
        "workflow/scripts/summary.py"
