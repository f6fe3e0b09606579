"""Snakemake adapter: one experiment's figures."""

from genboost.analysis.experiment_figures import write_figures
from genboost.files import logging_to

with logging_to(snakemake.log):
    write_figures(
        experiment=snakemake.params.experiment,
        job_paths=list(snakemake.input.jobs),
        measured_paths=list(snakemake.input.measured),
        paths=dict(snakemake.output.items()),
        sweep=list(snakemake.params.sweep),
    )
