"""Snakemake adapter: the study's conclusions from every experiment's cells.csv."""

import pandas as pd

from genboost import files
from genboost.compare import confirm, summary
from genboost.files import logging_to

with logging_to(snakemake.log):
    cells = pd.concat([pd.read_csv(p) for p in snakemake.input.cells], ignore_index=True)
    text = summary.summarize(
        cells,
        list(snakemake.params.experiments),
        dict(snakemake.params.setups),
        dict(snakemake.params.datasets),
        snakemake.params.baseline,
        # each confirmed experiment -> its picks' models on fresh seeds and the margin in test MSE
        {
            name: (pd.read_csv(fresh), confirm.margin(test, snakemake.params.margin))
            for name, fresh, test in zip(
                snakemake.params.confirmed, snakemake.input.fresh, snakemake.input.test_data, strict=True
            )
        },
    )
    files.write_text(snakemake.output[0], text)
