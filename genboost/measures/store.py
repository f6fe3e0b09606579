"""Stored measures: each measure of each model computed once, like each model trained once.

An entry holds the values of one part of a measure (`registry.parts`: one radius of the SAM-ascent sharpness, or
the whole setting of another measure) of one model. Its key is everything that determines those values: the
model's weights (their key in the cell store, which covers the cell, the data and the training code), the measure
and its setting, the code that computes it (`code`: its module and what that imports, as `fingerprint` reads
them) and the torch version. The entries live beside the cell results (`<store>/measures`) and are read and
refused as those are (`genboost.train.store.CellStore`): a damaged or foreign entry is measured again, never read.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch

from genboost.train.store import CellStore, number_or_none, result_key


def measure_key(weights_key: str, measure: str, value, code: str) -> str:
    """The key of one part of a measure (`value`, its setting) of the model stored under `weights_key`."""
    return result_key({"measure": measure, "setting": value}, {"weights": weights_key, "code": code,
                                                                "torch": torch.__version__})  # fmt: skip


def entry_problem(entry, key: str, weights_key: str, measure: str, value, columns: list[str]) -> str | None:
    """Why `entry` is not the values of these columns of that measure part of that model, or None when it is."""
    if not isinstance(entry, dict):
        return f"it holds a JSON {type(entry).__name__}, not an object"
    if entry.get("store_key") != key:
        return f"its store_key is {entry.get('store_key')!r}"
    if (entry.get("weights"), entry.get("measure"), entry.get("setting")) != (weights_key, measure, value):
        return f"it is not {measure} at {value!r} of the model {weights_key}"
    values = entry.get("values")
    if not isinstance(values, dict) or sorted(values) != sorted(columns):
        return f"its values are not those of {', '.join(columns)}"
    wrong = [c for c in columns if not number_or_none(values[c]) or not math.isfinite(values[c] or 0)]
    return f"its {', '.join(wrong)} are not finite numbers or null" if wrong else None


class MeasureStore(CellStore):
    """The stored measures, in the folder `measures` of the cell store at `root`."""

    refused_then = "it is measured again"

    def __init__(self, root: str | Path):
        super().__init__(Path(root) / "measures")

    def get_values(self, key: str, weights_key: str, measure: str, value, columns: list[str]) -> dict | None:
        """column -> value (or None) of one stored measure part, or None when the store has no whole entry of it."""
        entry = self.get_json(key, lambda e: entry_problem(e, key, weights_key, measure, value, columns))
        return None if entry is None else entry["values"]

    def put_values(self, key: str, weights_key: str, measure: str, value, values: dict) -> None:
        self.put(key, {"weights": weights_key, "measure": measure, "setting": value, "values": values})
