"""Our study beside a published table: per configuration our mean test MSE, the published one, how well they agree.

A published table (config key `reference`) has one row per configuration: experiment, optimizer, rho, lr, wd,
mean_test_mse (the contract is in reference/README.md). One of our experiments is compared with the rows of
one published experiment (its `reference_experiment`), configuration by configuration, matched on canonical numbers
(`genboost.config.study.fmt_number`, so 3e-5 and 0.00003 are the same lr). Our number is the mean test MSE over
seeds (`genboost.analysis.stats.cell_stats`: NaN where a seed diverged). Agreement is measured per table
(optimizer x rho) and overall: Spearman and Pearson correlation, mean absolute difference, and how many
configurations were compared, diverged on our side, or exist on one side only (counted, never an error).
"""

from __future__ import annotations

import math
import os

import numpy as np
import pandas as pd
from scipy import stats as sps

from genboost.analysis.stats import cell_stats
from genboost.config.optimizers import NAMES as OPTIMIZERS
from genboost.config.study import AXIS_TYPES, IN_TABLE_AXES, TABLE_AXES, fmt_number
from genboost.errors import PublishedTableError

KEY = [*TABLE_AXES, *IN_TABLE_AXES]  # a configuration, in the published table's column order
NUMBER_KEY = [k for k in KEY if AXIS_TYPES[k] is float]  # the key's numbers: rho, lr, wd
PUBLISHED_COLUMNS = ["experiment", *KEY, "mean_test_mse"]
PUBLISHED_NUMBERS = [*NUMBER_KEY, "mean_test_mse"]
BOTH, OURS_ONLY, TALK_ONLY = "both", "ours only", "talk only"
COMPARISON_COLUMNS = [*KEY, "side", "seeds", "diverged_seeds", "ours_mean", "ours_std", "talk_mean", "diff"]


def _where(path: str, i: int) -> str:
    return f"{path}, row {i + 1} (line {i + 2})"  # line 1 is the header


def _check_columns(path: str, columns) -> None:
    missing = [c for c in PUBLISHED_COLUMNS if c not in columns]
    extra = [c for c in columns if c not in PUBLISHED_COLUMNS]
    if missing or extra:
        raise PublishedTableError(f"{path}: columns must be {PUBLISHED_COLUMNS}; missing {missing}, unexpected {extra}")


def _first(mask: pd.DataFrame) -> tuple[int, str]:
    """(row position, column) of the first True of a boolean frame, row by row."""
    i = int(np.flatnonzero(mask.any(axis=1).to_numpy())[0])
    return i, str(mask.columns[mask.iloc[i].to_numpy()][0])


def _parse_numbers(path: str, raw: pd.DataFrame) -> pd.DataFrame:
    numbers = raw[PUBLISHED_NUMBERS].apply(pd.to_numeric, errors="coerce")
    bad = ~np.isfinite(numbers)  # NaN covers empty and non-numeric text
    if bad.to_numpy().any():
        i, col = _first(bad)
        raise PublishedTableError(f"{_where(path, i)}: {col} must be a finite number, got {raw[col].iloc[i]!r}")
    negative = numbers < 0  # a radius, a rate, a decay and an MSE are never negative
    if negative.to_numpy().any():
        i, col = _first(negative)
        raise PublishedTableError(f"{_where(path, i)}: {col} must be >= 0, got {raw[col].iloc[i]!r}")
    return numbers.astype(float)


def _check_labels(path: str, raw: pd.DataFrame) -> None:
    empty = raw["experiment"] == ""
    if empty.any():
        raise PublishedTableError(f"{_where(path, int(np.flatnonzero(empty)[0]))}: experiment is empty")
    unknown = ~raw["optimizer"].isin(OPTIMIZERS)
    if unknown.any():
        i = int(np.flatnonzero(unknown)[0])
        raise PublishedTableError(
            f"{_where(path, i)}: unknown optimizer {raw['optimizer'].iloc[i]!r}; choose one of {list(OPTIMIZERS)}"
        )


def _check_unique(path: str, table: pd.DataFrame) -> None:
    keys = canonical(table)[["experiment", *KEY]]
    repeats = keys.duplicated(keep="first")
    if repeats.any():
        again = int(np.flatnonzero(repeats)[0])
        first = int(np.flatnonzero((keys == keys.iloc[again]).all(axis=1))[0])
        raise PublishedTableError(
            f"{_where(path, again)}: duplicate configuration {dict(keys.iloc[again])}, "
            f"first given in row {first + 1} (line {first + 2})"
        )


def load_published(path: str | os.PathLike) -> pd.DataFrame:
    """A published table, checked (PublishedTableError names the file, row and value); its path in attrs["source"]."""
    path = str(path)
    try:
        raw = pd.read_csv(path, dtype=str, keep_default_na=False)  # all text: a bad value is reported as written
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as e:
        raise PublishedTableError(f"{path}: not a readable CSV table: {e}") from None
    raw.columns = [c.strip() for c in raw.columns]
    _check_columns(path, list(raw.columns))
    raw = raw[PUBLISHED_COLUMNS].apply(lambda col: col.str.strip())
    _check_labels(path, raw)
    table = pd.concat([raw[["experiment", "optimizer"]], _parse_numbers(path, raw)], axis=1)[PUBLISHED_COLUMNS]
    _check_unique(path, table)
    table.attrs["source"] = path
    return table


def published_rows(published: pd.DataFrame, experiment: str) -> pd.DataFrame:
    """The rows of one published experiment; an experiment the table does not have is an error."""
    rows = published[published["experiment"] == experiment]
    if rows.empty:
        source = published.attrs.get("source", "published table")
        have = sorted(published["experiment"].unique())
        raise PublishedTableError(f"{source}: no rows for reference_experiment {experiment!r}; it has {have}")
    return rows.reset_index(drop=True)


def canonical(frame: pd.DataFrame) -> pd.DataFrame:
    """The key's numbers (rho, lr and wd) as canonical text (fmt_number), so 3e-05 and 0.00003 match."""
    return frame.assign(**{c: frame[c].map(fmt_number) for c in NUMBER_KEY})


def one_experiment(cells: pd.DataFrame) -> str:
    names = sorted(cells["experiment"].unique())
    if len(names) != 1:
        raise ValueError(f"compare: expected the cells of one experiment, got {names}")
    return names[0]


def compare_configurations(cells: pd.DataFrame, rows: pd.DataFrame) -> pd.DataFrame:
    """Per configuration of either side: our mean over seeds, the talk's number, ours - talk (COMPARISON_COLUMNS).

    `side` says where the configuration exists (both, ours only, talk only); `ours_mean` is NaN where a
    seed diverged (`diverged_seeds` > 0).
    """
    one_experiment(cells)
    ours = canonical(cell_stats(cells, intervals=False)).rename(
        columns={"n": "seeds", "diverged": "diverged_seeds", "mean": "ours_mean", "std": "ours_std"}
    )
    talk = canonical(rows).rename(columns={"mean_test_mse": "talk_mean"})
    merged = ours[[*KEY, "seeds", "diverged_seeds", "ours_mean", "ours_std"]].merge(
        talk[[*KEY, "talk_mean"]], on=KEY, how="outer", indicator="side"
    )
    merged["side"] = merged["side"].map({"both": BOTH, "left_only": OURS_ONLY, "right_only": TALK_ONLY}).astype(str)
    merged["diff"] = merged["ours_mean"] - merged["talk_mean"]
    merged[["seeds", "diverged_seeds"]] = merged[["seeds", "diverged_seeds"]].astype("Int64")  # empty: talk only
    merged[NUMBER_KEY] = merged[NUMBER_KEY].astype(float)  # canonical text is repr: exact
    merged = merged.sort_values(KEY, kind="stable").reset_index(drop=True)
    return merged[COMPARISON_COLUMNS]


def on_both_sides(comparison: pd.DataFrame) -> pd.DataFrame:
    """The configurations with a number on both sides (ours not diverged)."""
    return comparison[(comparison["side"] == BOTH) & comparison["ours_mean"].notna()]


def _correlation(test, x: pd.Series, y: pd.Series) -> float:
    if len(x) < 2 or x.nunique() < 2 or y.nunique() < 2:  # undefined for constant or single values
        return math.nan
    return float(test(x, y).statistic)


def _agreement_row(optimizer, rho, part: pd.DataFrame) -> dict:
    both = on_both_sides(part)
    x, y = both["talk_mean"], both["ours_mean"]
    return dict(
        optimizer=optimizer,
        rho=rho,
        compared=len(both),
        diverged=int(((part["side"] == BOTH) & part["ours_mean"].isna()).sum()),
        ours_only=int((part["side"] == OURS_ONLY).sum()),
        talk_only=int((part["side"] == TALK_ONLY).sum()),
        spearman=_correlation(sps.spearmanr, x, y),
        pearson=_correlation(sps.pearsonr, x, y),
        mad=float((y - x).abs().mean()) if len(both) else math.nan,
    )


def agreement(comparison: pd.DataFrame) -> pd.DataFrame:
    """Per table (optimizer x rho) and overall (optimizer and rho "all", last row): how well ours matches the talk.

    Columns: optimizer, rho, compared, diverged (on our side, left out), ours_only, talk_only, spearman,
    pearson, mad (mean |ours - talk| over the compared configurations).
    """
    rows = [_agreement_row(o, r, g) for (o, r), g in comparison.groupby(list(TABLE_AXES), sort=True)]
    rows.append(_agreement_row("all", "all", comparison))
    return pd.DataFrame(rows)


def comparison_csv(comparison: pd.DataFrame) -> str:
    """The per-configuration comparison at full precision (empty where a side has no number)."""
    return comparison.to_csv(index=False)
