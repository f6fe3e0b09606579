# One experiment's cells.csv, tables and figures.


for exp in STUDY.experiments:

    rule:
        name:
            f"aggregate_{exp.name}"
        input:
            **wiring_measure.analysis_inputs(
                exp,
                R,
                PARTS[exp.name],
                STUDY.analysis,
                PLAN_CORES,
            ),
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
        priority: wiring.REPORT_PRIORITY
        localrule: True
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


# A figure's PNG as the HTML report shows it, under its experiment's figures
REPORTED_FIGURE = partial(report, caption="../report/figure.rst", category="Figures")


def report_figures(paths, experiment):
    """Figure outputs (name -> path), each PNG in the report."""
    return {
        k: (REPORTED_FIGURE(v, subcategory=experiment) if v.endswith(".png") else v)
        for k, v in paths.items()
    }


# The figures drawn from the train jobs' files alone, and the measures figure, which also reads the measure jobs':
# two jobs, so that a new measure setting redraws the measures figure alone.
for exp in STUDY.experiments:

    rule:
        name:
            f"figures_{exp.name}"
        input:
            # the train jobs' files alone: a new measure setting keeps these figures
            jobs=wiring.job_files(exp, R, PARTS[exp.name]),
        output:
            **report_figures(wiring.train_figure_paths(R, exp), exp.name),
        log:
            wiring.log_path(R, exp.name, "figures"),
        localrule: True
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

    if measured(STUDY.analysis):

        rule:
            name:
                f"measures_figure_{exp.name}"
            input:
                **wiring_measure.analysis_inputs(
                    exp,
                    R,
                    PARTS[exp.name],
                    STUDY.analysis,
                    PLAN_CORES,
                ),
            output:
                **report_figures(
                    wiring.measures_figure_paths(R, exp, STUDY.analysis), exp.name
                ),
            log:
                wiring.log_path(R, exp.name, "measures_figure"),
            localrule: True
            conda:
                "../../envs/genboost.yaml"
            resources:
                runtime=10,
                mem_mb=1000,
            params:
                experiment=exp.name,
                sweep=list(exp.sweep),
            script:
                "../scripts/measures_figure.py"
