"""Snakemake adapter: train (or reuse) the cells of one job and write their metrics.json files."""

import logging

from genboost import grid, jobs
from genboost.model import Cell

logging.basicConfig(filename=snakemake.log[0], filemode="w", level=logging.INFO, format="%(asctime)s %(message)s")
study = grid.Study.from_config(snakemake.config)
jobs.run_train_job(
    experiment=study.experiment(snakemake.params.experiment),
    cells=[Cell.from_dict(c) for c in snakemake.params.cells],
    outputs=list(snakemake.output),
    results=study.results,
    train_csv=snakemake.input.train,
    test_csv=snakemake.input.test,
    threads=snakemake.threads,
    analysis=snakemake.params.analysis,
)
