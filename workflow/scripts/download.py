"""Snakemake adapter: fetch the verified obesity CSV (from data.local_copy, or the UCI zip)."""

from genboost.data.download import fetch
from genboost.files import logging_to

with logging_to(snakemake.log):
    fetch(
        url=snakemake.params.url,
        member=snakemake.params.member,
        sha256=snakemake.params.sha256,
        dest=snakemake.output[0],
        local_copy=snakemake.params.local_copy or None,
    )
