"""The best configuration: the one with the lowest mean test MSE over seeds, among those that have a mean
(a configuration with a diverged seed has none, so it is never best). Ties go to the first row. Where no
configuration has a mean, `most_finished` is the fallback a claim's side may take instead."""

from __future__ import annotations

import pandas as pd


def best(means: pd.DataFrame, value: str = "mean") -> pd.Series | None:
    """The row of `means` (one per configuration) with the lowest `value`; None when no row has one."""
    ok = means.dropna(subset=[value])
    return None if ok.empty else ok.loc[ok[value].idxmin()]


def best_of_each(means: pd.DataFrame, by) -> dict:
    """group key -> `best` of that group of `means` (grouped by `by`, sorted), for the groups that have one."""
    found = {key: best(group) for key, group in means.groupby(by, sort=True)}
    return {key: row for key, row in found.items() if row is not None}


def most_finished(means: pd.DataFrame, finished: str = "finished", value: str = "finished_mean") -> pd.Series | None:
    """The fallback when no row of `means` has a mean: the row with the most finished seeds (`finished`), ties to
    the lowest `value` (the mean over those seeds), then to the first row; None when `means` is empty."""
    if means.empty:
        return None
    ranked = means.sort_values([finished, value], ascending=[False, True], na_position="last", kind="stable")
    return ranked.iloc[0]
