"""Test MSE in units of the test labels' variance (cells.csv's `test_mse_rel`, genboost.analysis.tables), so that a
reader of any report sees how far a model beats predicting the mean; and the one warning sign of a split whose
test rows are easier than its train rows."""

from __future__ import annotations

import math

import pandas as pd

from genboost.analysis.stats import cell_stats, is_diverged

RELATIVE = "test_mse_rel"  # cells.csv: test MSE / variance of the split's test labels
# The one line every report that quotes `rel` states.
MEANING = (
    "rel: test MSE ÷ the variance of the test labels (1 − R²). 1.0 is what always predicting the test labels' "
    "mean scores; below 1 a model beats it, 0 is a perfect fit."
)
EASY_SHARE = 0.5  # "most models"


def has_relative(cells: pd.DataFrame | None) -> bool:
    return cells is not None and RELATIVE in cells and bool(cells[RELATIVE].notna().any())


def with_relative(means: pd.DataFrame, cells: pd.DataFrame) -> pd.DataFrame:
    """`means` (`stats.cell_stats` of these cells, one row per configuration, in its order) with `rel`: the mean over
    seeds of test MSE / test-label variance (NaN where a seed diverged or cells.csv has no such numbers)."""
    rel = cell_stats(cells, RELATIVE, intervals=False)["mean"].to_numpy() if has_relative(cells) else math.nan
    return means.assign(rel=rel)


def rel_text(row: pd.Series) -> str:
    """', rel 0.201' for a row of `with_relative`, '' where it has no relative value."""
    value = row.get("rel", math.nan)
    return "" if pd.isna(value) else f", rel {value:.3f}"


def share_test_below_train(cells: pd.DataFrame) -> float:
    """The share of the models that did not diverge whose test MSE is below their train MSE (NaN: none left)."""
    if "train_mse" not in cells:
        return math.nan
    ok = cells[~is_diverged(cells) & cells["train_mse"].notna()]
    return float((ok["test_mse"] < ok["train_mse"]).mean()) if len(ok) else math.nan


def easy_split_lines(cells: pd.DataFrame, experiments) -> list[str]:
    """One line per experiment whose test MSE is below its train MSE for most models: its test rows are easier than
    its train rows (a split to check), and rankings by the generalization gap rank negative gaps there."""
    lines = []
    for name in experiments:
        share = share_test_below_train(cells[cells["experiment"] == name])
        if share > EASY_SHARE:
            lines.append(
                f"- **Check the split of {name}**: its test MSE is below its train MSE for {share:.0%} of its models "
                "(the test rows are easier than the train rows; the gap = test − train MSE is mostly negative, so "
                "rankings by the gap rank negative gaps)."
            )
    return lines
