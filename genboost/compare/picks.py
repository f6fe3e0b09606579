"""Which configuration a claim's side takes: its best (genboost.analysis.best) or, where every configuration of the
side has a diverged grid seed, its fallback pick, so that the confirmation on fresh seeds can still judge the claim
(the rule: `FALLBACK`, a constant that the reports print)."""

from __future__ import annotations

import math

import pandas as pd

from genboost.analysis.best import best, most_finished
from genboost.analysis.stats import config_columns, is_diverged
from genboost.compare.scale import RELATIVE

FALLBACK = " ".join(
    """
Where every configuration of a side has a diverged grid seed, the side has no best and the grid's verdict is
"not testable"; the confirmation on fresh seeds still judges the claim, with the side's fallback pick: its
configuration with the most grid seeds that finished, ties to the lowest mean test MSE over those seeds, then
to the first. Its grid mean is over its finished seeds only; the reports say "by the fallback" and how many of
its grid seeds diverged.
""".split()
)


def pick(means: pd.DataFrame, cells: pd.DataFrame | None) -> pd.Series | None:
    """A side's configuration among `means` (conclusions.Numbers.means rows, `cell_stats` with `rel`): its best;
    where it has none, its fallback pick, whose `mean` and `rel` are over its finished seeds in `cells`. None where
    the side has no configuration, or no best on a published table (`cells` None: no seeds to count)."""
    found = best(means)
    if found is not None or cells is None:
        return found
    fallback = most_finished(_with_finished(means, cells))
    return None if fallback is None else fallback.drop(["mean", "finished"]).rename({"finished_mean": "mean"})


def _with_finished(means: pd.DataFrame, cells: pd.DataFrame) -> pd.DataFrame:
    """`means` with each configuration's finished seeds (`finished`), their mean test MSE (`finished_mean`) and,
    in place of `rel`, their mean relative test MSE."""
    keys = config_columns(cells)
    done = cells[~is_diverged(cells)]
    done = done.assign(_rel=done[RELATIVE] if RELATIVE in done else math.nan)
    agg = done.groupby(keys, dropna=False).agg(
        finished=("test_mse", "size"), finished_mean=("test_mse", "mean"), rel=("_rel", "mean")
    )
    out = means.drop(columns="rel", errors="ignore").merge(agg.reset_index(), on=keys, how="left")
    return out.assign(finished=out["finished"].fillna(0))


def is_fallback(config: pd.Series) -> bool:
    """Whether a side's pick is its fallback: a best never has a diverged seed."""
    return config.get("diverged", 0) > 0


def picked(label: str, config: pd.Series) -> str:
    """A side's label as the reports name its pick: the label of a best, and of a fallback pick how it was picked,
    e.g. "best SGD (by the fallback, 2 of 3 grid seeds diverged)"."""
    if not is_fallback(config):
        return label
    return f"{label} (by the fallback, {int(config['diverged'])} of {int(config['n'])} grid seeds diverged)"
