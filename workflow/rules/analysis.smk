# One experiment's cells.csv, tables and figures.


for exp in STUDY.experiments:

    rule:
        name:
            f"aggregate_{exp.name}"
        input:
            **wiring.analysis_inputs(exp, R, PARTS[exp.name], STUDY.analysis),
            # its split's test labels, whose variance scales cells.csv's test_mse_rel
            test_data=wiring.data_paths(exp, R)["test"],
        output:
            cells=report(
                wiring.cells_path(R, exp.name),
                caption="../report/cells.rst",
                category="Cells",
                subcategory=exp.name,
            ),
            tables=[
                (
                    report(
                        t,
                        caption="../report/table.rst",
                        category="Tables",
                        subcategory=exp.name,
                    )
                    if t.endswith(".csv")
                    else t
                )
                for t in wiring.table_paths(R, exp)
            ],
        log:
            wiring.log_path(R, exp.name, "aggregate"),
        conda:
            "../../envs/genboost.yaml"
        resources:
            runtime=10,
            mem_mb=1000,
        params:
            experiment=exp.name,
            sweep=list(exp.sweep),
            # each table's file -> the values of its cells (axis -> canonical text)
            tables=wiring.tables(R, exp),
        script:
            "../scripts/aggregate.py"


for exp in STUDY.experiments:

    rule:
        name:
            f"figures_{exp.name}"
        input:
            **wiring.analysis_inputs(exp, R, PARTS[exp.name], STUDY.analysis),
        output:
            **{
                k: (
                    report(
                        v,
                        caption="../report/figure.rst",
                        category="Figures",
                        subcategory=exp.name,
                    )
                    if v.endswith(".png")
                    else v
                )
                for k, v in wiring.figure_paths(R, exp, STUDY.analysis).items()
            },
        log:
            wiring.log_path(R, exp.name, "figures"),
        conda:
            "../../envs/genboost.yaml"
        resources:
            runtime=10,
            mem_mb=1000,
        params:
            experiment=exp.name,
            sweep=list(exp.sweep),
        script:
            "../scripts/figures.py"
