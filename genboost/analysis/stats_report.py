"""The statistics as Markdown: per experiment, which effects the seeds support and which are within noise.

The numbers come from `genboost.analysis.stats`; this module only words and tabulates them.
"""

from __future__ import annotations

import math

import pandas as pd
from tabulate import tabulate

from genboost.analysis.best import best_of_each
from genboost.analysis.formats import number as _fmt
from genboost.analysis.formats import p_value as _p
from genboost.analysis.stats import (
    NO_PAIRS,
    cell_stats,
    effect_verdict,
    factors,
    is_diverged,
    min_pairs,
    paired,
    rank_correlations,
    sweep_axes,
)
from genboost.config.study import fmt_number, fmt_value


def _scope(row) -> str:
    opt = "all optimizers" if row["optimizer"] == "all" else row["optimizer"].upper()
    return f"{opt}, {'each at its best lr' if row['lrs'] == 'best' else 'all lrs'}"


def _sentence(row) -> str:
    if row["verdict"] == NO_PAIRS:
        return (
            f"{row['comparison']} ({_scope(row)}): {NO_PAIRS}: each of its {row['n_dropped']} pairs has a diverged side"
        )
    return (
        f"{row['comparison']} ({_scope(row)}): {row['verdict']}: mean difference {_fmt(row['mean_diff'], '+.4f')} "
        f"[95% CI {_fmt(row['ci_low'], '+.4f')}, {_fmt(row['ci_high'], '+.4f')}], n={row['n_pairs']} pairs, "
        f"t-test p={_p(row['p_t'])}, Wilcoxon p={_p(row['p_wilcoxon'])}"
    )


def _comparison_table(comps: pd.DataFrame) -> str:
    headers = ["comparison", "optimizer", "lrs", "pairs", "dropped", "mean diff", "95% CI", "p (t)", "p (W)", "verdict"]
    rows = [
        [r.comparison, r.optimizer, r.lrs, r.n_pairs, r.n_dropped, _fmt(r.mean_diff, "+.4f"),
         f"[{_fmt(r.ci_low, '+.4f')}, {_fmt(r.ci_high, '+.4f')}]", _p(r.p_t), _p(r.p_wilcoxon), r.verdict]
        for r in comps.itertuples()
    ]  # fmt: skip
    return tabulate(rows, headers=headers, tablefmt="github", disable_numparse=True)


NOTHING_TO_COMPARE = (
    "Nothing to compare: no two models differ in SAM, weight decay or optimizer alone (with the same other "
    "settings and seed)."
)


def _experiment_lines(exp: str, cells: pd.DataFrame, comps: pd.DataFrame, alpha: float) -> list[str]:
    lines = [f"### {exp}", ""]
    if is_diverged(cells).all():
        return [*lines, f"Every model diverged ({len(cells)} of {len(cells)}): nothing to compare.", ""]
    lines += _sweep_lines(cells) + _best_lines(cells)
    if comps.empty:
        return [*lines, "", NOTHING_TO_COMPARE, ""]
    groups = (
        ("Supported by the data", [v.startswith("supported") for v in comps["verdict"]]),
        ("Within noise", comps["verdict"] == "within noise"),
        (f"Not testable (fewer than {min_pairs(alpha)} complete pairs)", comps["verdict"] == "not testable"),
        ("Nothing to compare (every pair has a diverged side)", comps["verdict"] == NO_PAIRS),
    )
    for title, chosen in groups:
        rows = comps[chosen]
        if not rows.empty:
            lines += ["", f"{title}:", "", *(f"- {_sentence(r)}" for _, r in rows.iterrows())]
    return [
        *lines,
        "",
        "All comparisons (difference = treatment - control test MSE):",
        "",
        _comparison_table(comps),
        "",
    ]


def _sweep_lines(cells: pd.DataFrame) -> list[str]:
    """The settings this experiment sweeps besides the grid's five axes: each a factor of its own."""
    said = [
        f"{axis} ({', '.join(fmt_value(axis, v) for v in sorted(cells[axis].dropna().unique()))})"
        for axis in sweep_axes(cells)
    ]
    return [f"- Axes besides optimizer, lr, wd, rho and seed: {'; '.join(said)}"] if said else []


def _best_lines(cells: pd.DataFrame) -> list[str]:
    """Each optimizer's best configuration (it defines the best lr of the best-lr comparisons)."""
    lines = []
    for opt, b in best_of_each(cell_stats(cells), "optimizer").items():
        swept = "".join(f", {a}={fmt_value(a, b[a])}" for a in sweep_axes(cells))
        lines.append(
            f"- Best {opt.upper()} (defines its best lr): lr={fmt_number(b['lr'])}, wd={fmt_number(b['wd'])}, "
            f"rho={fmt_number(b['rho'])}{swept}: test MSE {b['mean']:.4f} [95% CI {_fmt(b['ci_low'])}, "
            f"{_fmt(b['ci_high'])}], n={int(b['n'])} seeds"
        )
    return lines


def _flatness_lines(cells: pd.DataFrame, measures, targets, alpha: float) -> list[str]:
    corr = rank_correlations(cells, measures, targets)
    lines = ["### Flatness and generalization (Kendall tau over models)", ""]
    for r in corr.itertuples():
        if r.n < 2:
            said = "nothing to compare (fewer than 2 models that did not diverge)"
        elif math.isnan(r.p):
            said = "not testable"
        elif r.p < alpha:
            said = f"supported: higher {r.measure} goes with {'higher' if r.tau > 0 else 'lower'} {r.target}"
        else:
            said = "within noise"
        scope = "all optimizers" if r.optimizer == "all" else r.optimizer.upper()
        lines.append(f"- {r.measure} vs {r.target} ({scope}, {r.n} models): tau={_fmt(r.tau, '+.3f')}, "
                     f"p={_p(r.p)}: {said}")  # fmt: skip
    return [*lines, ""]


def distinct(comps: pd.DataFrame) -> pd.DataFrame:
    """The comparisons less each "all optimizers" row that repeats one optimizer's (one optimizer in the experiment,
    or one left with complete pairs): the same pairs, the same numbers."""
    same = ["experiment", "comparison", "lrs", "n_pairs", "mean_diff", "p_t", "p_wilcoxon"]  # pairs dropped aside
    key = pd.Series([repr(row) for row in comps[same].round(12).itertuples(index=False)], index=comps.index)
    pooled = comps["optimizer"].eq("all") & comps["factor"].ne("optimizer")
    repeats = pooled & comps["n_pairs"].gt(0) & key.isin(set(key[~pooled]))
    return comps[~repeats].reset_index(drop=True)


def stats_markdown(cells: pd.DataFrame, measures=(), targets=("test_mse", "gap"), alpha: float = 0.05) -> str:
    """A Markdown section: per experiment, which effects the seeds support and which are within noise."""
    comps = pd.concat([paired(cells, f) for f in factors(cells)], ignore_index=True)
    comps = distinct(comps)
    said = [effect_verdict(r, alpha) for _, r in comps.iterrows()]
    comps["verdict"] = pd.Series(said, index=comps.index, dtype=object)
    n_tests = sum(v == "within noise" or v.startswith("supported") for v in comps["verdict"])
    others = "" if n_tests == len(comps) else " (the others have too few complete pairs)"
    lines = [
        "## Statistics: what the seeds support",
        "",
        f"Each comparison is pooled over the grid: it pairs every two models that differ in one factor only, with "
        f"the same other settings and seed (over all lrs, or at each optimizer's best lr), and averages their "
        f"differences; pairs with a diverged side are dropped. (The talk's conclusions above compare best against "
        f"best instead, so the two can word one effect differently.) An effect counts as supported when both the "
        f"paired t-test and the Wilcoxon signed-rank test give p < {alpha}. Of the {len(comps)} comparisons listed "
        f"below, {n_tests} are tested{others}, so about {n_tests * alpha:.1f} would pass by chance alone; the best "
        f"lr is chosen on the same test MSE, so the best-lr rows are optimistic.",
        "",
    ]
    if cells.empty:
        return "\n".join([*lines, "No models: nothing to compare.", ""])
    for exp, part in cells.groupby("experiment", sort=True):
        lines += _experiment_lines(exp, part, comps[comps["experiment"] == exp], alpha)
    if measures:
        lines += _flatness_lines(cells, measures, targets, alpha)
    return "\n".join(lines).rstrip() + "\n"
