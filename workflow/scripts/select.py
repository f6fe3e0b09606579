"""Snakemake adapter: the configurations each claim part of a confirmed experiment selects on the grid's seeds."""

from genboost.compare.selection import write_selected
from genboost.files import logging_to

with logging_to(snakemake.log):
    write_selected(snakemake.input.cells, snakemake.input.get("partner_cells"), snakemake.output[0])
