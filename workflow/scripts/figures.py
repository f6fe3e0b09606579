"""Snakemake adapter: one experiment's figures drawn from its train jobs' files."""

from genboost.analysis.experiment_figures import write_figures
from genboost.files import logging_to

with logging_to(snakemake.log):
    write_figures(
        experiment=snakemake.params.experiment,
        job_paths=list(snakemake.input.jobs),
        paths=dict(snakemake.output.items()),
        sweep=list(snakemake.params.sweep),
    )
