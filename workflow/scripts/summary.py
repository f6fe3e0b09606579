"""Snakemake adapter: the study's conclusions from every experiment's cells.csv."""

import pandas as pd

from genboost import files
from genboost.compare import summary
from genboost.files import logging_to

with logging_to(snakemake.log):
    cells = pd.concat([pd.read_csv(p) for p in snakemake.input.cells], ignore_index=True)
    text = summary.summarize(
        cells,
        list(snakemake.params.experiments),
        dict(snakemake.params.setups),
        dict(snakemake.params.datasets),
        snakemake.params.baseline,
    )
    files.write_text(snakemake.output[0], text)
