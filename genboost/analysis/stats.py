"""Statistics over seeds: confidence intervals, paired tests of SAM / weight decay / optimizer, rank correlations.

Every comparison pairs two models that differ in one factor only and share every other coordinate and the
seed (same initialization, same batch order), so the seed-to-seed noise cancels in the difference. A setting
an experiment sweeps (`genboost.config.sweep`: a column of cells.csv such as batch_size) is one more coordinate: the
configurations of its levels are never averaged together, and it is a factor of its own.
A pair with a diverged side is dropped and counted. A conclusion is "supported" when both the paired
t-test and the Wilcoxon signed-rank test reject "no difference" at `alpha`: the t-test alone can be
carried by one outlying seed, the Wilcoxon alone ignores how large the differences are.
"""

from __future__ import annotations

import functools
import math
import warnings

import numpy as np
import pandas as pd

from genboost.analysis.best import best_of_each
from genboost.config.cell import AXES
from genboost.config.optimizers import in_order, label
from genboost.config.study import CONFIG_AXES, fmt_number, fmt_value
from genboost.config.sweep import SWEEPABLE

CONFIG = ["experiment", *CONFIG_AXES]  # a model but for its seed, in each experiment
FACTORS = ("sam", "wd", "optimizer")
CONFIDENCE = 0.95
NO_PAIRS = "nothing to compare"
# What scipy says of a t-test on nearly identical differences (all seeds moved alike): expected here, the p it
# gives stands (0 for a constant nonzero difference), and the report would otherwise fill with the same line.
PRECISION_LOSS = "Precision loss occurred in moment calculation"
FLAG_TEXTS = {"true": True, "1": True, "1.0": True, "false": False, "0": False, "0.0": False}  # a flag's text


def is_diverged(cells: pd.DataFrame) -> pd.Series:
    """A model counts as diverged when flagged so or when it has no test MSE (an empty field in cells.csv)."""
    return csv_flags(cells["diverged"], gap=False) | cells["test_mse"].isna()


def csv_flags(column: pd.Series, gap: bool | None = None) -> pd.Series:
    """A True/False column of cells.csv as booleans: pandas reads it as booleans, or as text ("True", " false",
    "1") when a column mixes them with gaps. A gap reads as `gap`; it is an error where `gap` is None, as is any
    other value."""
    if column.dtype == bool:
        return column.copy()

    def flag(value):
        if pd.isna(value):
            return gap
        return FLAG_TEXTS.get(str(value).strip().lower())

    read = column.map(flag)
    if read.isna().any():
        raise ValueError(f"cells.csv: {column.name} must be True or False, got {column[read.isna()].iloc[0]!r}")
    return read.astype(bool)


def sweep_axes(cells: pd.DataFrame) -> list[str]:
    """The swept settings among the columns of `cells`: those in which models with the same experiment,
    optimizer, lr, wd, rho and seed differ (a setting that is the same in all of them is no axis)."""
    candidates = [c for c in SWEEPABLE if c in cells.columns]
    if not candidates or cells.empty:
        return []
    counts = cells.groupby(["experiment", *AXES], dropna=False)[candidates].nunique(dropna=False)
    return [c for c in candidates if (counts[c] > 1).any()]


def config_columns(cells: pd.DataFrame) -> list[str]:
    """What identifies a configuration (a model but for its seed): CONFIG and the swept settings."""
    return [*CONFIG, *sweep_axes(cells)]


def factors(cells: pd.DataFrame) -> tuple[str, ...]:
    """The factors `paired` compares in these cells: FACTORS and each swept setting."""
    return (*FACTORS, *sweep_axes(cells))


def _check_unique(cells: pd.DataFrame) -> None:
    keys = [*config_columns(cells), "seed"]
    dup = cells.duplicated(keys, keep=False)
    if dup.any():
        first = cells[dup].iloc[0]
        raise ValueError(f"cells: more than one row for {dict(first[keys])}")


def _scipy_stats():
    """scipy.stats, imported on first use: the figures need no interval and start ~0.6 s sooner without it."""
    from scipy import stats

    return stats


@functools.cache
def _t_quantile(confidence: float, dof: int) -> float:
    """The two-sided Student-t quantile of a confidence interval: the same few (confidence, seeds) come back for
    every configuration, and scipy's distribution call costs ~1 ms each time."""
    return float(_scipy_stats().t.ppf(0.5 + confidence / 2, dof))


def t_interval(values: np.ndarray, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """Student-t confidence interval of the mean; (nan, nan) with fewer than 2 values."""
    n = len(values)
    if n < 2:
        return math.nan, math.nan
    mean, sem = float(np.mean(values)), float(np.std(values, ddof=1)) / math.sqrt(n)
    half = _t_quantile(confidence, n - 1) * sem
    return mean - half, mean + half


def _groups(cells: pd.DataFrame, keys: list[str]) -> tuple[list[tuple], list[np.ndarray]]:
    """The groups of `cells` by `keys` (NaN a key of its own, as groupby's dropna=False): their keys in sorted
    order and, for each, its rows' positions in the frame's order (those pandas' groupby gives, without
    building a frame per group)."""
    grouped = cells.groupby(keys, sort=True, dropna=False)
    codes = grouped.ngroup().to_numpy()
    order = np.argsort(codes, kind="stable")
    bounds = np.flatnonzero(np.diff(codes[order])) + 1
    return list(grouped.size().index), np.split(order, bounds) if len(order) else []


def cell_stats(cells: pd.DataFrame, value: str = "test_mse", intervals: bool = True) -> pd.DataFrame:
    """Per configuration: n seeds, diverged seeds, mean, std, 95% CI; NaN where a seed diverged or n < 2
    (the CI also NaN with intervals=False)."""
    _check_unique(cells)
    config = config_columns(cells)
    values, diverged = cells[value].to_numpy(dtype=float), is_diverged(cells).to_numpy(dtype=bool)
    rows = []
    for key, rows_of in zip(*_groups(cells, config), strict=True):  # NaN: a setting another experiment sweeps
        vals, divs = values[rows_of], diverged[rows_of]
        bad = bool(divs.any())
        mean = math.nan if bad else float(np.mean(vals))
        std = math.nan if bad or len(vals) < 2 else float(np.std(vals, ddof=1))
        lo, hi = t_interval(vals) if intervals and not bad else (math.nan, math.nan)
        rows.append([*key, len(vals), int(divs.sum()), mean, std, lo, hi])
    return pd.DataFrame(rows, columns=[*config, "n", "diverged", "mean", "std", "ci_low", "ci_high"])


def best_lrs(cells: pd.DataFrame) -> dict[tuple[str, str], float]:
    """(experiment, optimizer) -> lr of that optimizer's configuration with the lowest mean test MSE."""
    return {key: float(b["lr"]) for key, b in best_of_each(cell_stats(cells), ["experiment", "optimizer"]).items()}


def paired_tests(diff: np.ndarray) -> dict:
    """n, mean difference, its 95% CI, paired t-test p and Wilcoxon signed-rank p (NaN where not defined)."""
    n = len(diff)
    out = dict(n_pairs=n, mean_diff=math.nan, ci_low=math.nan, ci_high=math.nan, p_t=math.nan, p_wilcoxon=math.nan)
    if n == 0:
        return out
    out["mean_diff"] = float(np.mean(diff))
    if n < 2:
        return out
    out["ci_low"], out["ci_high"] = t_interval(diff)
    if np.all(diff == 0):  # identical results: no evidence of any difference (scipy would give NaN)
        return {**out, "p_t": 1.0, "p_wilcoxon": 1.0}
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=PRECISION_LOSS, category=RuntimeWarning)
        out["p_t"] = float(_scipy_stats().ttest_1samp(diff, 0.0).pvalue)
        out["p_wilcoxon"] = float(_scipy_stats().wilcoxon(diff).pvalue)
    return out


def _levels(factor: str, cells: pd.DataFrame) -> tuple[str, list[tuple], list[str]]:
    """(column, its (treatment, control) values, pairing keys besides experiment and seed) of a factor. A swept
    setting compares each level with each larger one (batch_size=16 vs batch_size=32)."""
    axes = sweep_axes(cells)
    column = "rho" if factor == "sam" else factor
    keys = [a for a in (*CONFIG_AXES, *axes) if a != column]
    if factor in ("sam", "wd"):
        return column, [(v, 0.0) for v in sorted(cells[column].unique()) if v > 0], keys
    if factor == "optimizer":
        names = in_order(cells["optimizer"].unique())  # each later one (Adam) against each earlier one (SGD)
        return column, [(b, a) for i, a in enumerate(names) for b in names[i + 1 :]], keys
    if factor in axes:
        values = sorted(cells[factor].dropna().unique())
        return column, [(a, b) for i, a in enumerate(values) for b in values[i + 1 :]], keys
    raise ValueError(f"paired: factor must be one of {FACTORS} or a setting the cells sweep {axes}, got {factor!r}")


def _label(factor: str, treat, control) -> str:
    if factor == "sam":
        return f"SAM rho={fmt_number(treat)} vs no SAM"
    if factor == "wd":
        return f"wd={fmt_number(treat)} vs wd=0"
    if factor == "optimizer":
        return f"{label(treat)} vs {label(control)}"
    return f"{factor}={fmt_value(factor, treat)} vs {factor}={fmt_value(factor, control)}"


class _Pairs:
    """One scope of `paired`'s cells as arrays, to pair a factor's treatment and control rows by boolean masks
    rather than a pandas merge per comparison (the merge's pairs, in its order: the treatment rows')."""

    def __init__(self, data: pd.DataFrame, column: str, keys: list[str]):
        self.level = data[column].to_numpy()
        self.optimizer = data["optimizer"].to_numpy()
        self.experiment = data["experiment"].to_numpy()
        self.test_mse = data["test_mse"].to_numpy(dtype=float)
        self.diverged = data["_div"].to_numpy(dtype=bool)
        # a pair's shared coordinates as one integer (NaN, a setting another experiment sweeps, pairs with NaN)
        self.key = data.groupby(["experiment", *keys, "seed"], sort=False, dropna=False).ngroup().to_numpy()
        self.partner = np.full(self.key.max() + 1 if len(self.key) else 0, -1)

    def pair(self, rows: np.ndarray, treat, control) -> tuple[np.ndarray, int]:
        """(treatment - control test MSE of the complete pairs among `rows`, number of pairs dropped for
        divergence)."""
        t = np.flatnonzero(rows & (self.level == treat))
        c = np.flatnonzero(rows & (self.level == control))
        self.partner[self.key[c]] = c
        matched = self.partner[self.key[t]]
        self.partner[self.key[c]] = -1
        t, c = t[matched >= 0], matched[matched >= 0]
        ok = ~(self.diverged[t] | self.diverged[c])
        return self.test_mse[t[ok]] - self.test_mse[c[ok]], int((~ok).sum())


def _at_best_lr(cells: pd.DataFrame) -> pd.DataFrame:
    best = best_lrs(cells)
    keep = [
        best.get((e, o)) == lr for e, o, lr in zip(cells["experiment"], cells["optimizer"], cells["lr"], strict=True)
    ]
    return cells[np.array(keep, dtype=bool)]  # an empty list would select no columns instead of no rows


def paired(cells: pd.DataFrame, factor: str) -> pd.DataFrame:
    """One row per comparison of `factor` (sam | wd | optimizer | a swept setting) in each experiment.

    Columns: experiment, factor, comparison, optimizer ("all" or one optimizer), lrs ("all" or "best": each
    optimizer at its best lr; Adam vs SGD then pairs the two best lrs), n_pairs, n_dropped, mean_diff
    (treatment - control test MSE), ci_low, ci_high, p_t, p_wilcoxon.
    """
    _check_unique(cells)
    column, contrasts, keys = _levels(factor, cells)
    cells = cells.assign(_div=is_diverged(cells))
    scopes = {"all": cells, "best": _at_best_lr(cells)}
    # lr is set by the optimizer at its best lr: no pairing key there
    pairs = {lrs: _Pairs(data, column, [k for k in keys if not (lrs == "best" and k == "lr")])
             for lrs, data in scopes.items()}  # fmt: skip
    opts = ["all"] if factor == "optimizer" else ["all", *sorted(cells["optimizer"].unique())]
    rows = []
    for lrs, (treat, control), opt in ((s, c, o) for s in scopes for c in contrasts for o in opts):
        p = pairs[lrs]
        chosen = np.ones(len(p.key), dtype=bool) if opt == "all" else p.optimizer == opt
        for exp in sorted(set(p.experiment[chosen])):
            diff, dropped = p.pair(chosen & (p.experiment == exp), treat, control)
            if len(diff) + dropped == 0:
                continue
            label = _label(factor, treat, control)
            head = dict(experiment=exp, factor=factor, comparison=label, optimizer=opt, lrs=lrs)
            rows.append({**head, "n_dropped": dropped, **paired_tests(diff)})
    columns = ["experiment", "factor", "comparison", "optimizer", "lrs", "n_pairs", "n_dropped"]
    return pd.DataFrame(rows, columns=[*columns, "mean_diff", "ci_low", "ci_high", "p_t", "p_wilcoxon"])


def min_pairs(alpha: float = 0.05) -> int:
    """The fewest pairs with which the two-sided Wilcoxon test can reach p < alpha at all (2 / 2**n < alpha)."""
    return max(2, math.floor(math.log2(2 / alpha)) + 1)


def effect_verdict(result, alpha: float = 0.05) -> str:
    """What a comparison row supports of an effect: both tests must reject at alpha for it to count.

    With fewer than `min_pairs(alpha)` pairs (6 at 0.05) the Wilcoxon test cannot reject whatever the
    data, so such a comparison is "not testable" rather than "within noise"; with none (every pair has a
    diverged side) there is nothing to compare (NO_PAIRS).
    """
    if result["n_pairs"] == 0:
        return NO_PAIRS
    if result["n_pairs"] < min_pairs(alpha) or math.isnan(result["p_t"]) or math.isnan(result["p_wilcoxon"]):
        return "not testable"
    if result["p_t"] < alpha and result["p_wilcoxon"] < alpha:
        return "supported: lowers test MSE" if result["mean_diff"] < 0 else "supported: raises test MSE"
    return "within noise"


def rank_correlations(cells: pd.DataFrame, measures, targets=("test_mse", "gap")) -> pd.DataFrame:
    """Kendall tau-b (and p) of each measure with each target over all models and within each optimizer.

    `gap` is test_mse - train_mse when cells has no such column. Diverged models and NaNs are left out.
    """
    cells = cells.assign(_div=is_diverged(cells))
    if "gap" not in cells:
        cells = cells.assign(gap=cells["test_mse"] - cells["train_mse"])
    for col in [*measures, *targets]:
        if col not in cells:
            raise ValueError(f"rank_correlations: cells has no column {col!r}")
    cells = cells[~cells["_div"]]
    groups = [("all", cells), *((o, g) for o, g in cells.groupby("optimizer", sort=True))]
    rows = []
    for (scope, g), m, t in ((sg, m, t) for sg in groups for m in measures for t in targets):
        pair = g[[m, t]].astype(float).dropna()
        tau, p = math.nan, math.nan
        if len(pair) >= 2 and pair[m].nunique() > 1 and pair[t].nunique() > 1:
            res = _scipy_stats().kendalltau(pair[m], pair[t])
            tau, p = float(res.statistic), float(res.pvalue)
        rows.append(dict(optimizer=scope, measure=m, target=t, n=len(pair), tau=tau, p=p))
    return pd.DataFrame(rows, columns=["optimizer", "measure", "target", "n", "tau", "p"])
