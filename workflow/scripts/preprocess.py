"""Snakemake adapter: validate, split, encode and standardize the raw CSV (see genboost.data.preprocess)."""

import logging

from genboost.data import DataError, preprocess

logging.basicConfig(
    filename=snakemake.log[0] if snakemake.log else None,
    filemode="w",
    level=logging.INFO,
    format="%(asctime)s %(levelname)s %(message)s",
)
try:
    preprocess(
        raw_csv=snakemake.input[0],
        out_train=snakemake.output.train,
        out_test=snakemake.output.test,
        out_manifest=snakemake.output.manifest,
        drop_columns=snakemake.params.drop_columns,
        test_fraction=snakemake.params.test_fraction,
        split_seed=snakemake.params.split_seed,
    )
except DataError as e:
    logging.error("%s", e)  # the log then says what went wrong, not only stderr's traceback
    raise
