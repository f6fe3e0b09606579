# genboost: download -> preprocess -> train (one job per cell or per pack of cells) -> measure (the same jobs'
# models, from their stored weights) -> tables -> summary.
# This file only wires rules; all logic lives in the genboost package.
from pathlib import Path

from snakemake.utils import min_version

from functools import partial

from genboost import fingerprint, wiring
from genboost.config import settings
from genboost.config.study import Study, measured
from genboost.train.resume import Lineage

min_version("9.0")


configfile: "config.yaml"


# Experiments in the config file's order (--config moves the ones it names first); YAML scalars read where
# the schema takes no string, then Snakemake's validate (defaults filled in)
config.update(settings.in_file_order(config, workflow.configfiles))
config.update(settings.checked(config, Path(workflow.basedir) / settings.SCHEMA))
STUDY = Study.from_config(config)
LINEAGE = Lineage(STUDY)
R = STUDY.results
DATASETS = config["datasets"]
REFERENCE = config["reference"]
# Experiments compared with the reference table, each with its partner: the run it continues, or its second chance
COMPARED = STUDY.compared(wiring.reference_experiments(REFERENCE))


report: "workflow/report/workflow.rst"


wildcard_constraints:
    **wiring.wildcard_constraints(),


localrules:
    all,
    summary,


rule all:
    input:
        f"{R}/summary.md",
        [wiring.table_paths(R, e) for e in STUDY.experiments],
        [wiring.figure_paths(R, e, STUDY.analysis).values() for e in STUDY.experiments],
        [wiring.vs_talk_paths(R, name).values() for name in COMPARED],


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
            "envs/genboost.yaml"
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
            "workflow/scripts/download.py"


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
        "envs/genboost.yaml"
    resources:
        runtime=10,
        mem_mb=1000,
    params:
        # the experiment's preprocessing and its dataset's entry (whose sha256 is checked again)
        settings=lambda wildcards: STUDY.preprocessings()[wildcards.data],
        code=fingerprint.rule_code(workflow, "workflow/scripts/preprocess.py"),
    script:
        "workflow/scripts/preprocess.py"


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
            "envs/genboost.yaml"
        threads: wiring.job_threads(exp)
        resources:
            **wiring.job_resources(exp),
        params:
            experiment=exp.name,
            cells=partial(wiring.job_params, exp, R),
            curve_every=exp.train["curve_every"],
            code=fingerprint.rule_code(workflow, "workflow/scripts/train.py"),
        script:
            "workflow/scripts/train.py"

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
                "envs/genboost.yaml"
            resources:
                **wiring.measure_resources(exp),
            params:
                experiment=exp.name,
                analysis=STUDY.analysis,
                code=fingerprint.rule_code(workflow, "workflow/scripts/measure.py"),
            script:
                "workflow/scripts/measure.py"

    rule:
        name:
            f"aggregate_{exp.name}"
        input:
            **wiring.cell_files(exp, R, STUDY.analysis),
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
                for t in wiring.table_paths(R, exp)
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
            sweep=list(exp.sweep),
            code=fingerprint.rule_code(workflow, "workflow/scripts/aggregate.py"),
        script:
            "workflow/scripts/aggregate.py"


for exp in STUDY.experiments:

    rule:
        name:
            f"figures_{exp.name}"
        input:
            **wiring.cell_files(exp, R, STUDY.analysis),
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
                for k, v in wiring.figure_paths(R, exp, STUDY.analysis).items()
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
            sweep=list(exp.sweep),
            code=fingerprint.rule_code(workflow, "workflow/scripts/figures.py"),
        script:
            "workflow/scripts/figures.py"


for name, partner in COMPARED.items():

    rule:
        name:
            f"vs_talk_{name}"
        input:
            **({"partner_cells": f"{R}/{partner.name}/cells.csv"} if partner else {}),
            cells=f"{R}/{name}/cells.csv",
            reference=REFERENCE,
        output:
            **{
                k: (
                    report(
                        v,
                        caption="workflow/report/vs_talk.rst",
                        category="Reference",
                        subcategory=name,
                    )
                    if k in ("md", "png")
                    else v
                )
                for k, v in wiring.vs_talk_paths(R, name).items()
            },
        log:
            f"{R}/logs/{name}/vs_talk.log",
        conda:
            "envs/genboost.yaml"
        resources:
            runtime=10,
            mem_mb=1000,
        params:
            experiment=name,
            reference_experiment=STUDY.experiment(name).reference_experiment,
            partner_reference_experiment=(
                partner.reference_experiment if partner else None
            ),
            # whether it is the second chance of its partner (config key continues)
            continues_partner=bool(STUDY.experiment(name).continues),
            code=fingerprint.rule_code(workflow, "workflow/scripts/vs_talk.py"),
        script:
            "workflow/scripts/vs_talk.py"


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
        # the setups the talk's conclusions are checked on: main-like experiment -> its second chance
        setups=STUDY.setups(COMPARED),
        code=fingerprint.rule_code(workflow, "workflow/scripts/summary.py"),
    script:
        "workflow/scripts/summary.py"
