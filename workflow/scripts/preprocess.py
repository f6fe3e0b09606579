"""Snakemake adapter: check, split, encode (and optionally scale) a dataset's raw CSV (genboost.data.preprocess)."""

from genboost.data.preprocess import preprocess
from genboost.files import logging_to

with logging_to(snakemake.log):
    preprocess(
        raw_csv=snakemake.input[0],
        out_train=snakemake.output.train,
        out_test=snakemake.output.test,
        out_manifest=snakemake.output.manifest,
        **snakemake.params.settings,
    )
