"""Jiang et al.'s granulated Kendall coefficient (ICLR 2020, arXiv 1912.02178): which measure predicts test error
when one hyperparameter changes and nothing else does.

Kendall's tau over all models rewards a measure that only tracks one strong hyperparameter: sharpness, for one,
can correlate with test error through the learning rate alone (Andriushchenko et al., ICML 2023, arXiv
2302.07011). The granulated coefficient compares only models that differ in one axis: for each axis, psi is
the mean tau within the groups of models that share every other coordinate (seed, experiment and optimizer
included); Psi is the mean of psi over the axes. All measures here are oriented as complexity measures (higher
means sharper or larger, expected to go with higher error), so a good measure has a high positive Psi.

Models that diverged or lack the measure or target are left out; a group with fewer than 2 such models, or
with a constant measure or target (tau undefined), is skipped and not counted.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from tabulate import tabulate

from genboost.analysis.stats import is_diverged, sweep_axes
from genboost.config.cell import AXES
from genboost.measures import registry

COORDINATES = ("experiment", *AXES)  # what identifies a model of the grid
LR_CONTEXT = ("experiment", "optimizer")  # one lr is another step size under another optimizer
PSI_ROW = "Psi"
# The lr flag: a measure whose |tau| over all models is at least FLAG_MIN_TAU while its mean |tau| within
# groups of equal lr is under FLAG_RATIO times that owes most of its correlation to the learning rate.
FLAG_RATIO = 0.5
FLAG_MIN_TAU = 0.1
TARGET_NAMES = {"test_mse": "test MSE", "gap": "generalization gap (test MSE - train MSE)"}


def usable(cells: pd.DataFrame, measure: str, target: str) -> pd.DataFrame:
    """The models with a finite measure and target that did not diverge (gap added where missing)."""
    if target == "gap" and "gap" not in cells:
        cells = cells.assign(gap=cells["test_mse"] - cells["train_mse"])
    for column in (measure, target):
        if column not in cells:
            raise ValueError(f"granulated: cells has no column {column!r}")
    bad = is_diverged(cells) if "diverged" in cells else pd.Series(False, index=cells.index)
    values = cells[[measure, target]].astype(float)
    keep = ~bad & np.isfinite(values).all(axis=1)
    return cells[keep].assign(**{measure: values[measure][keep], target: values[target][keep]})


def kendall(a, b) -> float:
    """Kendall's tau-b, NaN with fewer than 2 values or a constant side.

    Counted over all pairs with numpy (equal to scipy.stats.kendalltau's statistic, tested): the summary asks
    for thousands of taus of small groups, where scipy's per-call overhead is most of the time.
    """
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if len(a) < 2 or np.all(a == a[0]) or np.all(b == b[0]):
        return math.nan
    sa, sb = np.sign(a[:, None] - a[None, :]), np.sign(b[:, None] - b[None, :])
    return float((sa * sb).sum() / math.sqrt((sa * sa).sum() * (sb * sb).sum()))


def group_taus(models: pd.DataFrame, measure: str, target: str, by: list[str]) -> list[float]:
    """tau within each group of equal `by` values, for the groups where it is defined."""
    values = models[[measure, target]].to_numpy(dtype=float)
    if by:  # numpy slices of the rows sorted by group: pandas' per-group frames cost more than the taus
        codes = models.groupby(by, sort=True, dropna=False).ngroup().to_numpy()
        order = np.argsort(codes, kind="stable")
        values = values[order]
        parts = np.split(values, np.flatnonzero(np.diff(codes[order])) + 1)
    else:
        parts = [values]
    taus = [kendall(part[:, 0], part[:, 1]) for part in parts]
    return [t for t in taus if not math.isnan(t)]


def fixed_coordinates(cells: pd.DataFrame, axes: list[str]) -> list[str]:
    """The coordinates that stay fixed in every group: those of COORDINATES and the swept settings in cells that
    are not axes."""
    return [c for c in (*COORDINATES, *sweep_axes(cells)) if c in cells and c not in axes]


def granulated_kendall(
    cells: pd.DataFrame, measure: str, target: str, axes: list[str], fixed: list[str] | None = None
) -> pd.DataFrame:
    """Per axis: psi (mean tau over the groups that differ in that axis only) and n_groups; then a row PSI_ROW
    with Psi, the mean of the axes' psi (those with a group), and the groups of all axes.

    `fixed` are the other coordinates every group holds equal besides the other axes (default
    `fixed_coordinates`: the seed, experiment and optimizer where cells has them).
    """
    missing = [a for a in axes if a not in cells]
    if not axes or missing:
        raise ValueError(f"granulated_kendall: axes {axes!r} must be non-empty columns of cells (missing {missing})")
    fixed = fixed_coordinates(cells, axes) if fixed is None else list(fixed)
    models = usable(cells, measure, target)
    rows = []
    for axis in axes:
        taus = group_taus(models, measure, target, [*fixed, *(a for a in axes if a != axis)])
        rows.append(dict(axis=axis, psi=float(np.mean(taus)) if taus else math.nan, n_groups=len(taus)))
    psis = [r["psi"] for r in rows if not math.isnan(r["psi"])]
    total = sum(r["n_groups"] for r in rows)
    rows.append(dict(axis=PSI_ROW, psi=float(np.mean(psis)) if psis else math.nan, n_groups=total))
    return pd.DataFrame(rows, columns=["axis", "psi", "n_groups"])


def lr_flag(cells: pd.DataFrame, measure: str, target: str) -> dict:
    """tau over all models, mean |tau| within groups of equal lr (and experiment, optimizer), their number, and
    `flagged`: |tau| >= FLAG_MIN_TAU overall but the within-lr mean under FLAG_RATIO times it."""
    models = usable(cells, measure, target)
    overall = kendall(models[measure], models[target])
    within = group_taus(models, measure, target, [c for c in LR_CONTEXT if c in models] + ["lr"])
    within_mean = float(np.mean(np.abs(within))) if within else math.nan
    flagged = abs(overall) >= FLAG_MIN_TAU and within_mean < FLAG_RATIO * abs(overall)  # NaN compares False
    return dict(tau=overall, n=len(models), within_lr=within_mean, n_lr_groups=len(within), flagged=bool(flagged))


def _ranking(grans: dict[str, pd.DataFrame], flags: dict[str, dict]) -> pd.DataFrame:
    """One row per measure, best first: rank, measure, Psi, tau over all models, within-lr mean |tau|, flagged.
    Ordered by Psi (highest first; measures without a Psi last, with no rank)."""
    rows = [
        dict(measure=m, Psi=float(g.set_index("axis").loc[PSI_ROW, "psi"]), tau=flags[m]["tau"],
             within_lr=flags[m]["within_lr"], flagged=flags[m]["flagged"])
        for m, g in grans.items()
    ]  # fmt: skip
    table = pd.DataFrame(rows, columns=["measure", "Psi", "tau", "within_lr", "flagged"])
    table = table.sort_values("Psi", ascending=False, na_position="last", kind="stable").reset_index(drop=True)
    table.insert(
        0, "rank", pd.array([i + 1 if not math.isnan(p) else None for i, p in enumerate(table["Psi"])], "Int64")
    )
    return table


def _fmt(x: float) -> str:
    return "–" if x is None or math.isnan(x) else f"{x:+.3f}"


def _target_lines(cells: pd.DataFrame, measures: list[str], target: str, axes: list[str]) -> list[str]:
    tables = {m: granulated_kendall(cells, m, target, axes) for m in measures}
    grans = {m: t.set_index("axis") for m, t in tables.items()}
    flags = {m: lr_flag(cells, m, target) for m in measures}
    headers = ["measure", "tau (all models)", "mean abs(tau) within lr", *(f"psi {a} (groups)" for a in axes), PSI_ROW]
    rows = []
    for m in measures:
        g, f = grans[m], flags[m]
        cols = [f"{_fmt(g.loc[a, 'psi'])} ({g.loc[a, 'n_groups']})" for a in axes]
        within = "–" if math.isnan(f["within_lr"]) else f"{f['within_lr']:.3f} ({f['n_lr_groups']})"
        rows.append([m, f"{_fmt(f['tau'])} (n={f['n']})", within, *cols, _fmt(g.loc[PSI_ROW, "psi"])])
    lines = [f"### {TARGET_NAMES.get(target, target)}", ""]
    lines += [tabulate(rows, headers=headers, tablefmt="github", disable_numparse=True), ""]
    ranking = _ranking(tables, flags)
    ranked = [f"{r.rank}. {r.measure} (Psi {_fmt(r.Psi)})" for r in ranking.itertuples() if pd.notna(r.rank)]
    lines += ["Ranking by Psi: " + ("; ".join(ranked) if ranked else "no measure has a Psi."), ""]
    for m in measures:
        f = flags[m]
        if f["flagged"]:
            lines.append(
                f"- Flag: {m} correlates with {TARGET_NAMES.get(target, target)} over all models (tau "
                f"{_fmt(f['tau'])}) but hardly within a fixed lr (mean |tau| {f['within_lr']:.3f} over "
                f"{f['n_lr_groups']} groups, under {FLAG_RATIO:g} of that): its correlation comes mostly through "
                "the learning rate."
            )
    if not any(f["flagged"] for f in flags.values()):
        lines.append("- No measure loses most of its correlation within a fixed lr.")
    return [*lines, ""]


def _measure_lines(measures) -> list[str]:
    """What each measure of the registry (genboost.measures.registry) is, and what a higher value means."""
    known = [m for m in measures if registry.measure_of(m)]
    lines = [f"- {m}: {registry.label(m)}; higher: {registry.measure_of(m).higher}" for m in known]
    return [*lines, ""] if lines else []


def generalization_markdown(
    cells: pd.DataFrame, measures: list[str], axes: list[str], targets=("test_mse", "gap")
) -> str:
    """A Markdown section for summary.md: per target, tau over all models, the mean |tau| within a fixed lr, the
    granulated coefficient per axis with its number of groups, Psi, the ranking by Psi and the lr flags."""
    fixed = ", ".join(fixed_coordinates(cells, axes)) or "nothing"
    lines = [
        "## Generalization measures: granulated Kendall coefficient",
        "",
        f"Kendall's tau of each measure with the target over all models, then, per axis, psi: the mean tau within "
        f"groups of models that differ in that axis only ({fixed} and the other axes fixed), and Psi, the mean of "
        f"psi over the axes (Jiang et al. 2020). Measures are oriented so that higher should mean worse: a good "
        f"measure has a high positive Psi. A measure is flagged when |tau| over all models is at least "
        f"{FLAG_MIN_TAU:g} but its mean |tau| within groups of equal lr (and optimizer) is under {FLAG_RATIO:g} of "
        f"it. Diverged models are left out; groups with fewer than 2 models or a constant value are not counted.",
        "",
        *_measure_lines(measures),
    ]
    for target in targets:
        lines += _target_lines(cells, list(measures), target, list(axes))
    return "\n".join(lines).rstrip() + "\n"
