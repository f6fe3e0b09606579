"""Snakemake adapter: one experiment's tables and conclusions against the talk's published tables."""

from genboost.compare.report import grid_cells, write_vs_talk
from genboost.files import logging_to

with logging_to(snakemake.log):
    # the experiment's models and its partner's, from their train jobs' files (not cells.csv: no measure is read)
    grids = {
        k: grid_cells(job_paths=list(snakemake.input[f"{k}_jobs"]), test_csv=snakemake.input[f"{k}_test"], **g)
        for k, g in snakemake.params.grids.items()
    }
    write_vs_talk(
        experiment=snakemake.params.experiment,
        cells=grids["own"],
        reference_csv=snakemake.input.reference,
        reference_experiment=snakemake.params.reference_experiment,
        out_md=snakemake.output.md,
        out_csv=snakemake.output.csv,
        out_png=snakemake.output.png,
        out_pdf=snakemake.output.pdf,
        # the other experiment of the same setup that the talk's conclusions need (main or second chance)
        partner=grids.get("partner"),
        partner_reference_experiment=snakemake.params.partner_reference_experiment,
        continues_partner=snakemake.params.continues_partner,
        # its setup's picks on fresh seeds, where it is confirmed (config key confirm)
        fresh_csv=snakemake.input.get("fresh"),
        test_csv=snakemake.input.get("test_data"),
        margin=snakemake.params.margin,
    )
