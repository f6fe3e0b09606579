"""Snakemake adapter: fetch one dataset's verified CSV (from its local_copy, or its url)."""

from genboost.data.download import fetch
from genboost.files import logging_to

with logging_to(snakemake.log):
    fetch(
        url=snakemake.params.url,
        member=snakemake.params.member,
        sha256=snakemake.params.sha256,
        dest=snakemake.output[0],
        local_copy=snakemake.params.local_copy or None,
        dataset=snakemake.params.dataset,
    )
