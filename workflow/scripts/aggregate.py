"""Snakemake adapter: one experiment's cells.csv and tables."""

from genboost.analysis import tables

tables.write_experiment_outputs(
    experiment=snakemake.params.experiment,
    metrics_paths=list(snakemake.input.metrics),
    measures_paths=list(snakemake.input.measures),
    cells_csv=snakemake.output.cells,
    table_paths=list(snakemake.output.tables),
    sweep=list(snakemake.params.sweep),
)
