"""Snakemake adapter: one experiment's cells.csv and tables."""

import logging

from genboost.analysis import tables
from genboost.data.splits import label_variance
from genboost.files import logging_to

with logging_to(snakemake.log):
    models = tables.write_experiment_outputs(
        experiment=snakemake.params.experiment,
        job_paths=list(snakemake.input.jobs),
        measured_paths=list(snakemake.input.measured),
        cells_csv=snakemake.output.cells,
        tables=dict(snakemake.params.tables),  # path -> the values of its cells
        sweep=list(snakemake.params.sweep),
        test_label_variance=label_variance(snakemake.input.test_data),
    )
    logging.info(
        "%s: wrote %s (%d models, from %d train jobs) and %d tables",
        snakemake.params.experiment,
        snakemake.output.cells,
        models,
        len(snakemake.input.jobs),
        len(snakemake.output.tables),
    )
