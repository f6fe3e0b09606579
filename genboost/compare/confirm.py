"""A claim part decided on fresh seeds alone: the verdict, its interval and test, and the seeds that would decide it.

The two configurations of a part are picked on the grid's seeds (genboost.compare.conclusions); picking and
judging on the same seeds favours the side with more configurations (the winner's curse), so the verdict here
sees only seeds the grid never used. Δ per fresh seed = (the side the talk says is better) - (the other side),
paired by seed. The margin m is fixed before the data (`margin`). The rule is `RULES` (a constant, printed in
the reports: docstrings are gone under `python -OO`).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from genboost.analysis.stats import PRECISION_LOSS, csv_flags
from genboost.compare.conclusions import ALPHA, NOT_TESTABLE
from genboost.compare.picks import FALLBACK
from genboost.data.splits import label_variance

CONFIRMED, REFUTED, EQUIVALENT, UNDECIDED = "confirmed", "refuted", "equivalent", "undecided"
# Weakest first: a conclusion of several parts takes the first of its parts' verdicts in this order (a part the
# grid could not test stands as conclusions.py ranks it, between a refutation and an open question).
STRENGTH = (REFUTED, NOT_TESTABLE, UNDECIDED, EQUIVALENT, CONFIRMED)
PAIRED_T, SIGN_TEST = "paired t", "sign test"
POWER = 0.8  # of the seeds needed: the chance that that many fresh seeds decide the part
MAX_SEEDS = 100_000  # more seeds than this needed: reported as none would do
PAIRS = ("seed", "better_mse", "other_mse", "better_diverged", "other_diverged")  # judge()'s input columns

RULES = " ".join(
    """
Verdicts on fresh seeds alone (the grid's seeds only pick the two configurations). Δ per fresh seed = (the
side the talk says is better) - (the other side) in test MSE, paired by seed; its 95% and 90% intervals come
from the paired t-test (scipy.stats.ttest_rel). The margin m = `confirm.margin` × the variance of the
experiment's test labels (0.01: one point of R²). "A is better than B": confirmed when the 95% interval lies
below 0, refuted when it lies above 0, equivalent when the 90% interval lies inside (-m, m) (two one-sided
tests: neither side better by the margin), else undecided. "B does not beat A": confirmed when the one-sided
95% upper bound of Δ is below m (any gain of B is smaller than the margin), refuted when the 95% interval lies
above 0 and its upper end reaches m, else undecided. A diverged model is worse than any that finished: a pair
with one diverged side counts for the other side, a pair where both diverged is dropped, and where such pairs
exist the same rules read the intervals of the median Δ from the paired sign test (scipy.stats.quantile_test,
the binomial test of the signs) instead. A side whose every fresh model diverged loses. An undecided part gives
the seeds that would decide it: the smallest n with 80% power at α 0.05 for the observed mean and SD of Δ
(noncentral t), against 0 or against m as the rule needs. A conclusion of two parts takes the weakest verdict
of its parts, in the order refuted, undecided, equivalent, confirmed.
""".split()
    + [FALLBACK]
)


@dataclass(frozen=True)
class Fresh:
    """One claim part on fresh seeds. The intervals are of the mean Δ (paired t) or of the median Δ (sign test,
    where a pair has one diverged side); Δ = better - other."""

    verdict: str
    n: int  # fresh seeds paired
    n_diverged: int  # of them, those with a diverged side
    mean: float  # Δ over the pairs where both finished (NaN: none did)
    sd: float
    ci95: tuple[float, float]
    ci90: tuple[float, float]
    upper95: float  # the one-sided 95% upper bound of Δ
    method: str  # PAIRED_T or SIGN_TEST
    p: float  # two-sided, against Δ = 0
    margin: float
    better_mean: float  # each side's mean test MSE over its fresh models that finished
    other_mean: float
    seeds_needed: int | None = None  # only for an undecided part with a spread to work from
    needed_for: str = ""  # what that many seeds would show


def margin(test_split: str | Path, fraction: float) -> float:
    """m = `fraction` × the variance of a preprocessed split's test labels, the variance cells.csv's test_mse_rel
    divides by (genboost.data.splits.label_variance): one fraction reads the same on every dataset."""
    if not fraction > 0:
        raise ValueError(f"confirm.margin must be > 0, got {fraction!r}")
    return fraction * label_variance(test_split)


def weakest(verdicts) -> str:
    """The weakest of some parts' verdicts (`STRENGTH`)."""
    return min(verdicts, key=STRENGTH.index)


def decide(strict: bool, ci95, ci90, upper95, m: float):
    """The verdict the intervals give (`RULES`); numbers or numpy arrays alike (a NaN bound decides nothing)."""
    (lo95, hi95), (lo90, hi90) = ci95, ci90
    if strict:
        tests, verdicts = [hi95 < 0, lo95 > 0, (lo90 > -m) & (hi90 < m)], [CONFIRMED, REFUTED, EQUIVALENT]
    else:
        tests, verdicts = [upper95 < m, (lo95 > 0) & (hi95 >= m)], [CONFIRMED, REFUTED]
    out = np.select(np.broadcast_arrays(*tests), verdicts, UNDECIDED)
    return str(out) if out.ndim == 0 else out


def _diverged(pairs: pd.DataFrame, side: str) -> np.ndarray:
    """A side's flags read as cells.csv's are (text or booleans, a gap is False), and a model with no test MSE
    counts as diverged, as in genboost.analysis.stats.is_diverged."""
    return (csv_flags(pairs[f"{side}_diverged"], gap=False) | pairs[f"{side}_mse"].isna()).to_numpy()


def _stats():
    from scipy import stats  # on first use, as genboost.analysis.stats does

    return stats


def _t_intervals(better: np.ndarray, other: np.ndarray) -> tuple:
    """95% and 90% intervals, one-sided 95% upper bound and p of the paired t-test (NaN with < 2 pairs)."""
    if len(better) < 2:
        return (math.nan, math.nan), (math.nan, math.nan), math.nan, math.nan
    with warnings.catch_warnings():  # identical differences: scipy warns, the interval [Δ, Δ] it gives stands
        warnings.filterwarnings("ignore", message=PRECISION_LOSS, category=RuntimeWarning)
        warnings.filterwarnings("ignore", message="divide by zero", category=RuntimeWarning)
        warnings.filterwarnings("ignore", message="invalid value", category=RuntimeWarning)
        test = _stats().ttest_rel(better, other)
        upper = _stats().ttest_rel(better, other, alternative="less").confidence_interval(1 - ALPHA).high
        return _bounds(test, 1 - ALPHA), _bounds(test, 1 - 2 * ALPHA), float(upper), float(test.pvalue)


def _sign_intervals(delta: np.ndarray) -> tuple:
    """The same from the paired sign test: intervals of the median Δ (NaN where too few pairs allow none)."""
    test = _stats().quantile_test(delta, q=0, p=0.5)
    upper = _stats().quantile_test(delta, q=0, p=0.5, alternative="less").confidence_interval(1 - ALPHA).high
    return _bounds(test, 1 - ALPHA), _bounds(test, 1 - 2 * ALPHA), float(upper), float(test.pvalue)


def _bounds(test, confidence: float) -> tuple[float, float]:
    ci = test.confidence_interval(confidence)
    return float(ci.low), float(ci.high)


def judge(strict: bool, pairs: pd.DataFrame, m: float) -> Fresh:
    """One part's verdict on its fresh seeds (`RULES`). `strict`: the part says "better is better than other"
    (conclusions.Part.strict), else "other does not beat better". `pairs`: one row per fresh seed, columns
    `PAIRS`; `m`: the margin in test MSE."""
    if not m > 0:
        raise ValueError(f"judge: the margin must be > 0, got {m!r}")
    bd, od = _diverged(pairs, "better"), _diverged(pairs, "other")
    b, o = pairs["better_mse"].to_numpy(float), pairs["other_mse"].to_numpy(float)
    done = ~(bd | od)
    delta = b[done] - o[done]
    if (bd ^ od).any():  # a diverged model is worse than any that finished: Δ = +inf where better diverged
        with np.errstate(invalid="ignore"):  # a diverged model's test MSE may be inf: its Δ is set here
            signed = np.where(done, b - o, np.where(bd, math.inf, -math.inf))[~(bd & od)]
        method, (ci95, ci90, upper95, p) = SIGN_TEST, _sign_intervals(signed)
    else:
        method, (ci95, ci90, upper95, p) = PAIRED_T, _t_intervals(b[done], o[done])
    mean = float(np.mean(delta)) if len(delta) else math.nan
    sd = float(np.std(delta, ddof=1)) if len(delta) > 1 else math.nan
    verdict = _lost(bd, od) or decide(strict, ci95, ci90, upper95, m)
    needed = seeds_needed(strict, mean, sd, m) if verdict == UNDECIDED and method == PAIRED_T else (None, "")
    return Fresh(verdict, len(pairs), int((bd | od).sum()), mean, sd, ci95, ci90, upper95, method, p, m,
                 _finished_mean(b, bd), _finished_mean(o, od), *needed)  # fmt: skip


def _lost(better_diverged: np.ndarray, other_diverged: np.ndarray) -> str | None:
    """The verdict when one side's every fresh model diverged (it loses), else None."""
    if not len(better_diverged) or (better_diverged.all() and other_diverged.all()):
        return None
    return REFUTED if better_diverged.all() else CONFIRMED if other_diverged.all() else None


def _finished_mean(values: np.ndarray, diverged: np.ndarray) -> float:
    return float(np.mean(values[~diverged])) if (~diverged).any() else math.nan


def _powers(mean: float, sd: float, m: float) -> dict[str, Callable[[int], float]]:
    """What n fresh seeds could show, with the chance they show it (noncentral t, for the observed mean and SD
    of Δ): Δ on its observed side of 0 (the 95% interval), Δ < m (the one-sided bound), -m < Δ < m (both
    one-sided tests at once, taken as independent)."""
    st = _stats()

    def shift(n: int, by: float) -> float:  # the noncentrality of `by` in standard errors of n pairs
        return by * math.sqrt(n) / sd

    def crit(n: int, alpha: float) -> float:
        return float(st.t.ppf(1 - alpha, n - 1))

    return {
        "Δ < 0" if mean < 0 else "Δ > 0": lambda n: float(st.nct.sf(crit(n, ALPHA / 2), n - 1, shift(n, abs(mean)))),
        "Δ < m": lambda n: float(st.nct.sf(crit(n, ALPHA), n - 1, shift(n, m - mean))),
        "-m < Δ < m": lambda n: max(
            0.0,
            float(st.nct.sf(crit(n, ALPHA), n - 1, shift(n, m + mean)))
            + float(st.nct.sf(crit(n, ALPHA), n - 1, shift(n, m - mean)))
            - 1,
        ),
    }


def seeds_needed(strict: bool, mean: float, sd: float, m: float) -> tuple[int | None, str]:
    """The fewest fresh seeds with `POWER` to decide a part whose Δ has this mean and SD, and what they would
    show (the rule's `needed_for`): (None, "") where nothing is in reach within `MAX_SEEDS` or there is no
    spread to work from. "A is better than B": a side of 0, or -m < Δ < m where |mean| < m, whichever takes fewer;
    "B does not beat A": Δ < m where mean < m, else Δ > 0 (a refutation)."""
    if not (sd > 0 and math.isfinite(mean)):
        return None, ""
    powers = _powers(mean, sd, m)
    side = "Δ < 0" if mean < 0 else "Δ > 0"
    if strict:
        targets = [t for t, ok in ((side, mean != 0), ("-m < Δ < m", abs(mean) < m)) if ok]
    else:
        targets = ["Δ < m" if mean < m else side]
    found = [(n, t) for t in targets if (n := _fewest(powers[t])) is not None]
    if not found:
        return None, ""
    return min(found)


def _fewest(power: Callable[[int], float]) -> int | None:
    """The smallest n >= 2 with power(n) >= POWER (power rises with n): doubling, then bisection."""
    if power(2) >= POWER:
        return 2
    low, high = 2, 4
    while power(high) < POWER:
        if high > MAX_SEEDS:
            return None
        low, high = high, 2 * high
    while high - low > 1:  # power(low) < POWER <= power(high)
        mid = (low + high) // 2
        low, high = (low, mid) if power(mid) >= POWER else (mid, high)
    return high
