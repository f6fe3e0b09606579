"""Snakemake adapter: fresh.csv, the models of a confirmed experiment's selected configurations on the fresh seeds."""

from genboost.compare.selection import write_fresh
from genboost.files import logging_to

with logging_to(snakemake.log):
    write_fresh(list(snakemake.input.jobs), snakemake.input.test_data, snakemake.output[0])
