"""Snakemake adapter: one experiment's figures."""

from genboost.analysis.experiment_figures import write_figures
from genboost.files import logging_to

with logging_to(snakemake.log):
    write_figures(
        experiment=snakemake.params.experiment,
        metrics_paths=list(snakemake.input.metrics),
        measures_paths=list(snakemake.input.measures),
        paths=dict(snakemake.output.items()),
        sweep=list(snakemake.params.sweep),
    )
