# Each compared experiment beside the published table, and the summary of the whole study.


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
                        caption="../report/vs_talk.rst",
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
            "../../envs/genboost.yaml"
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
            "../scripts/vs_talk.py"


rule summary:
    input:
        cells=[f"{R}/{e.name}/cells.csv" for e in STUDY.experiments],
    output:
        report(
            f"{R}/summary.md",
            caption="../report/summary.rst",
            category="Summary",
        ),
    log:
        f"{R}/logs/summary.log",
    conda:
        "../../envs/genboost.yaml"
    params:
        experiments=[e.name for e in STUDY.experiments],
        # the experiment the others are compared with (config key baseline)
        baseline=STUDY.baseline,
        # the setups the talk's conclusions are checked on: main-like experiment -> its second chance
        setups=STUDY.setups(COMPARED),
        # the setups' grid on other data, checked on its own cells: experiment -> its dataset and second chance
        datasets=STUDY.other_datasets(COMPARED),
        code=fingerprint.rule_code(workflow, "workflow/scripts/summary.py"),
    script:
        "../scripts/summary.py"
