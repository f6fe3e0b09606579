"""Snakemake adapter: the configurations each claim part of a confirmed experiment selects on the grid's seeds,
from its train jobs' files (and its second chance's)."""

from genboost.compare.selection import grid_cells, write_selected
from genboost.files import logging_to

with logging_to(snakemake.log):
    grids = {k: grid_cells(job_paths=list(snakemake.input[k]), **g) for k, g in snakemake.params.grids.items()}
    write_selected(grids["jobs"], grids.get("partner_jobs"), snakemake.output[0])
