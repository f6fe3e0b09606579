"""The engine's results in the order of its cells, as the pipeline keeps them (`genboost.train.jobs` files each
block's results by the positions `engine.train_blocks` yields)."""

from __future__ import annotations

from genboost.train.engine import train_blocks


def train_in_order(cells, split, **options) -> list[dict]:
    """`train_blocks(cells, split, **options)`'s results, in the order of `cells`."""
    results: list[dict | None] = [None] * len(cells)
    for idx, out in train_blocks(cells, split, **options):
        for i, result in zip(idx, out, strict=True):
            results[i] = result
    return results
