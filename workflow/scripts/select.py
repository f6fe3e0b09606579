"""Snakemake adapter: the configurations each claim part of a confirmed experiment selects on the grid's seeds,
from its train jobs' files (and its second chance's)."""

from genboost.compare.selection import grid_cells, write_selected
from genboost.files import logging_to

with logging_to(snakemake.log):
    grids = {k: grid_cells(list(snakemake.input[k]), snakemake.params.sweeps[k]) for k in snakemake.params.sweeps}
    write_selected(grids["jobs"], grids.get("partner_jobs"), snakemake.output[0])
