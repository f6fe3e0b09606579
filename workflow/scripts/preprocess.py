"""Snakemake adapter: check, split, encode (and optionally scale) a dataset's raw CSV (genboost.data.preprocess)."""

from genboost.config.datasets import source
from genboost.data.preprocess import preprocess
from genboost.files import logging_to

# The file the user gave (from the config, not a param: where the file comes from is no part of the split)
entry = snakemake.config["datasets"][snakemake.params.settings["dataset"]["name"]]
with logging_to(snakemake.log):
    preprocess(
        raw_csv=snakemake.input[0],
        out_train=snakemake.output.train,
        out_test=snakemake.output.test,
        out_manifest=snakemake.output.manifest,
        source=source(entry),
        **snakemake.params.settings,
    )
