# Each compared experiment beside the published table, and the summary of the whole study.


rule vs_talk:
    input:
        # its train jobs' files and test split, and its partner's (not cells.csv: it reads no measure), the
        # reference table, and its setup's confirmation on fresh seeds, where it has one
        unpack(
            lambda wildcards: {
                **wiring_compare.vs_talk_inputs(
                    STUDY, PARTS, COMPARED, REFERENCE, wildcards.experiment
                ),
                **wiring_confirm.confirm_inputs(
                    STUDY, CONFIRMED, wildcards.experiment
                ),
            }
        ),
    output:
        **{
            k: (
                report(
                    v,
                    caption="../report/vs_talk.rst",
                    category="Reference",
                    subcategory="{experiment}",
                )
                if k in ("md", "png")
                else v
            )
            for k, v in wiring.vs_talk_paths(R, "{experiment}").items()
        },
    log:
        wiring.log_path(R, "{experiment}", "vs_talk"),
    wildcard_constraints:
        experiment=wiring.one_of(COMPARED),
    priority: wiring.REPORT_PRIORITY
    localrule: True
    conda:
        "../../envs/genboost.yaml"
    resources:
        runtime=10,
        mem_mb=1000,
    params:
        experiment=lambda wildcards: wildcards.experiment,
        # its and its partner's names and swept keys, by the prefix of their inputs
        grids=lambda wildcards: wiring_compare.vs_talk_grids(
            STUDY, COMPARED, wildcards.experiment
        ),
        reference_experiment=lambda wildcards: STUDY.experiment(
            wildcards.experiment
        ).reference_experiment,
        partner_reference_experiment=lambda wildcards: (
            COMPARED[wildcards.experiment].reference_experiment
            if COMPARED[wildcards.experiment]
            else None
        ),
        # whether it is the second chance of its partner (config key continues)
        continues_partner=lambda wildcards: bool(
            STUDY.experiment(wildcards.experiment).continues
        ),
        # the confirmation's margin, in units of the test labels' variance (config key confirm.margin)
        margin=STUDY.confirm and STUDY.confirm["margin"],
    script:
        "../scripts/vs_talk.py"


rule summary:
    input:
        cells=[wiring.cells_path(R, e.name) for e in STUDY.experiments],
        # each confirmed experiment's fresh models and test split (for the margin), in CONFIRMED's order
        fresh=[wiring_confirm.fresh_path(R, e) for e in CONFIRMED],
        test_data=[
            wiring_confirm.confirm_inputs(STUDY, CONFIRMED, e)["test_data"]
            for e in CONFIRMED
        ],
    output:
        report(
            wiring.summary_path(R),
            caption="../report/summary.rst",
            category="Summary",
        ),
    log:
        wiring.log_path(R, "summary"),
    priority: wiring.REPORT_PRIORITY
    localrule: True
    conda:
        "../../envs/genboost.yaml"
    params:
        experiments=[e.name for e in STUDY.experiments],
        # the experiment the others are compared with (config key baseline)
        baseline=STUDY.baseline,
        # the setups the talk's conclusions are checked on: main-like experiment -> its second chance
        setups=STUDY.setups(COMPARED),
        # the other experiments the talk's conclusions are checked on, each on its own cells and grid:
        # experiment -> its dataset and second chance (with the setups: STUDY.talk_experiments)
        datasets=STUDY.judged_on_own_cells(COMPARED),
        confirmed=list(CONFIRMED),
        margin=STUDY.confirm and STUDY.confirm["margin"],
    script:
        "../scripts/summary.py"
