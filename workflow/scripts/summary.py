"""Snakemake adapter: the study's conclusions from every experiment's cells.csv."""

import pandas as pd

from genboost import files, summary

cells = pd.concat([pd.read_csv(p) for p in snakemake.input.cells], ignore_index=True)
files.write_text(snakemake.output[0], summary.summarize(cells, list(snakemake.params.experiments)))
