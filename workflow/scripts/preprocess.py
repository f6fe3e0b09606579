"""Snakemake adapter: validate, split, encode and standardize the raw CSV (see genboost.data.preprocess)."""

from genboost.data import preprocess
from genboost.files import logging_to

with logging_to(snakemake.log):
    preprocess(
        raw_csv=snakemake.input[0],
        out_train=snakemake.output.train,
        out_test=snakemake.output.test,
        out_manifest=snakemake.output.manifest,
        drop_columns=snakemake.params.drop_columns,
        test_fraction=snakemake.params.test_fraction,
        split_seed=snakemake.params.split_seed,
    )
