"""Snakemake adapter: one experiment's measures figure, from its train and measure jobs' files."""

from genboost.analysis.measures_figure import write_measures_figure
from genboost.files import logging_to

with logging_to(snakemake.log):
    write_measures_figure(
        experiment=snakemake.params.experiment,
        job_paths=list(snakemake.input.jobs),
        measured_paths=list(snakemake.input.measured),
        paths=dict(snakemake.output.items()),
        sweep=list(snakemake.params.sweep),
    )
