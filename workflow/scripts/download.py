"""Snakemake adapter: fetch the verified obesity CSV (from data.local_copy, or the UCI zip)."""

import logging

from genboost.data import DataError, fetch

logging.basicConfig(
    filename=snakemake.log[0] if snakemake.log else None,
    filemode="w",
    level=logging.INFO,
    format="%(asctime)s %(levelname)s %(message)s",
)
try:
    fetch(
        url=snakemake.params.url,
        member=snakemake.params.member,
        sha256=snakemake.params.sha256,
        dest=snakemake.output[0],
        local_copy=snakemake.params.local_copy or None,
    )
except DataError as e:
    logging.error("%s", e)  # the log then says what went wrong, not only stderr's traceback
    raise
