"""Snakemake adapter: one experiment's figures."""

from genboost import figures

figures.write_figures(
    experiment=snakemake.params.experiment,
    metrics_paths=list(snakemake.input.metrics),
    paths=dict(snakemake.output.items()),
    sweep=list(snakemake.params.sweep),
)
