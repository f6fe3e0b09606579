"""Snakemake adapter: one experiment's tables and conclusions against the talk's published tables."""

from genboost.compare.report import write_vs_talk
from genboost.files import logging_to

with logging_to(snakemake.log):
    write_vs_talk(
        experiment=snakemake.params.experiment,
        cells_csv=snakemake.input.cells,
        reference_csv=snakemake.input.reference,
        reference_experiment=snakemake.params.reference_experiment,
        out_md=snakemake.output.md,
        out_csv=snakemake.output.csv,
        out_png=snakemake.output.png,
        out_pdf=snakemake.output.pdf,
        # the other experiment of the same setup that the talk's conclusions need (main or second chance)
        partner_cells_csv=snakemake.input.get("partner_cells"),
        partner_reference_experiment=snakemake.params.partner_reference_experiment,
        continues_partner=snakemake.params.continues_partner,
        # its setup's picks on fresh seeds, where it is confirmed (config key confirm)
        fresh_csv=snakemake.input.get("fresh"),
        test_csv=snakemake.input.get("test_data"),
        margin=snakemake.params.margin,
    )
