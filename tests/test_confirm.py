"""Verdicts on fresh seeds (genboost.compare.confirm) on hand-built pairs whose intervals are known by construction:
every category of both claim kinds, the margin's edges, diverged models, and the seeds needed against a
simulation of the rule itself."""

import math
import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from genboost.compare.conclusions import NOT_TESTABLE
from genboost.compare.confirm import (
    CONFIRMED,
    EQUIVALENT,
    PAIRED_T,
    REFUTED,
    SIGN_TEST,
    UNDECIDED,
    decide,
    judge,
    margin,
    seeds_needed,
    weakest,
)

M = 0.04  # the margin of these tests, in test MSE
STRICT, NOT_BEATEN = True, False  # "A is better than B", "B does not beat A" (conclusions.Part.strict)


def pairs(delta, better_diverged=(), other_diverged=()) -> pd.DataFrame:
    """One row per seed with these Δ = better - other; the listed rows' model on that side diverged."""
    delta = np.asarray(delta, dtype=float)
    other = 1.0 + 0.1 * np.sin(np.arange(len(delta)))  # seeds differ, as they do: the pairing cancels it
    flags = [np.isin(np.arange(len(delta)), rows) for rows in (better_diverged, other_diverged)]
    return pd.DataFrame(dict(seed=1000 + np.arange(len(delta)), better_mse=other + delta, other_mse=other,
                             better_diverged=flags[0], other_diverged=flags[1]))  # fmt: skip


def exact(mean: float, sd: float, n: int = 20) -> np.ndarray:
    """n differences with exactly this mean and SD (ddof 1)."""
    z = np.arange(n) - (n - 1) / 2
    return mean + sd * z / np.std(z, ddof=1)


def half_width(sd: float, n: int, confidence: float) -> float:
    return stats.t.ppf(0.5 + confidence / 2, n - 1) * sd / math.sqrt(n)


@pytest.mark.parametrize(
    ("strict", "mean", "sd", "verdict"),
    [
        (STRICT, -0.1, 0.05, CONFIRMED),
        (STRICT, 0.1, 0.05, REFUTED),
        (STRICT, 0.005, 0.02, EQUIVALENT),
        (STRICT, 0.01, 0.2, UNDECIDED),  # too noisy for any verdict
        (STRICT, -0.01, 0.001, CONFIRMED),  # inside the margin but surely below 0: the difference comes first
        (NOT_BEATEN, -0.1, 0.05, CONFIRMED),
        (NOT_BEATEN, 0.005, 0.02, CONFIRMED),  # B may gain, but surely less than m
        (NOT_BEATEN, 0.02, 0.001, CONFIRMED),  # B surely gains, by less than m: it does not beat A by the margin
        (NOT_BEATEN, 0.1, 0.05, REFUTED),
        (NOT_BEATEN, 0.03, 0.2, UNDECIDED),
    ],
)
def test_each_verdict_of_each_kind_of_claim(strict, mean, sd, verdict):
    f = judge(strict, pairs(exact(mean, sd)), M)
    assert f.verdict == verdict
    assert (f.method, f.n, f.n_diverged, f.margin) == (PAIRED_T, 20, 0, M)
    assert f.mean == pytest.approx(mean) and f.sd == pytest.approx(sd)
    assert f.ci95 == pytest.approx((mean - half_width(sd, 20, 0.95), mean + half_width(sd, 20, 0.95)))
    assert f.ci90 == pytest.approx((mean - half_width(sd, 20, 0.90), mean + half_width(sd, 20, 0.90)))
    assert f.upper95 == pytest.approx(mean + stats.t.ppf(0.95, 19) * sd / math.sqrt(20))
    assert f.better_mean - f.other_mean == pytest.approx(mean)
    assert (f.seeds_needed is None) == (verdict != UNDECIDED)


def test_no_claim_refutes_on_a_direction_alone():
    """Today's grid rule calls C2 "reproduced" on Δ -0.0055 over 3 seeds; on fresh seeds that is no verdict."""
    f = judge(NOT_BEATEN, pairs(exact(-0.0055, 0.05, n=3)), M)
    assert f.verdict == UNDECIDED and f.ci95[1] > M


@pytest.mark.parametrize(
    ("strict", "ci95", "ci90", "upper95", "verdict"),
    [
        (STRICT, (-0.03, 0.0), (-0.02, -0.01), -0.01, EQUIVALENT),  # touching 0 is not below it
        (STRICT, (-0.03, -1e-12), (-0.02, -0.01), -0.01, CONFIRMED),
        (STRICT, (0.0, 0.03), (0.01, 0.02), 0.02, EQUIVALENT),  # touching 0 is not above it
        (STRICT, (-0.05, 0.05), (-M, 0.03), 0.03, UNDECIDED),  # the margin's interval is open
        (STRICT, (-0.05, 0.05), (-0.03, M), 0.03, UNDECIDED),
        (STRICT, (-0.05, 0.05), (-M + 1e-12, M - 1e-12), 0.03, EQUIVALENT),
        (NOT_BEATEN, (-0.05, 0.05), (-0.03, 0.03), M, UNDECIDED),  # the bound must be below m, not at it
        (NOT_BEATEN, (-0.05, 0.05), (-0.03, 0.03), M - 1e-12, CONFIRMED),
        (NOT_BEATEN, (0.0, 0.09), (0.01, 0.08), 0.07, UNDECIDED),  # touching 0: no gain shown
        (NOT_BEATEN, (1e-12, 0.09), (0.01, 0.08), 0.07, REFUTED),
        (NOT_BEATEN, (0.01, 0.039), (0.01, 0.035), 0.035, CONFIRMED),  # above 0 but short of m
    ],
)
def test_the_interval_touching_0_or_the_margin(strict, ci95, ci90, upper95, verdict):
    assert decide(strict, ci95, ci90, upper95, M) == verdict


@pytest.mark.parametrize("side", [-1, 1])
def test_judge_flips_at_the_margin_edge(side):
    """The one-sided bound just below m confirms "does not beat", just above does not."""
    sd, n = 0.05, 20
    at_edge = M - stats.t.ppf(0.95, n - 1) * sd / math.sqrt(n)  # the mean whose upper bound is m
    f = judge(NOT_BEATEN, pairs(exact(at_edge + side * 1e-9, sd, n)), M)
    assert f.upper95 == pytest.approx(M)
    assert f.verdict == (CONFIRMED if side < 0 else UNDECIDED)


def test_a_diverged_model_loses_its_pair_and_the_sign_test_decides():
    """Finished pairs where the better side is behind, but the other side diverged on most seeds: the sign test
    counts those for the better side, as a paired t-test of the finished pairs alone could not."""
    delta = np.full(20, 0.01)
    f = judge(STRICT, pairs(delta, other_diverged=range(4, 20)), M)
    assert (f.method, f.n, f.n_diverged, f.verdict) == (SIGN_TEST, 20, 16, CONFIRMED)
    assert f.mean == pytest.approx(0.01) and f.p == pytest.approx(stats.binomtest(16, 20).pvalue)
    assert f.ci95[1] < 0 and f.seeds_needed is None
    mirrored = judge(STRICT, pairs(-delta, better_diverged=range(4, 20)), M)
    assert mirrored.verdict == REFUTED


def test_one_diverged_pair_keeps_the_median_within_the_margin():
    f = judge(STRICT, pairs(exact(0.0, 0.005), other_diverged=[3]), M)
    assert (f.method, f.n_diverged, f.verdict) == (SIGN_TEST, 1, EQUIVALENT)


def test_a_missing_test_mse_is_a_diverged_model():
    frame = pairs(exact(-0.1, 0.01))
    frame.loc[2, "other_mse"] = math.nan
    frame.loc[5, ["better_mse", "better_diverged"]] = [math.inf, True]  # and one flagged so, its loss overflowed
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        f = judge(STRICT, frame, M)
    assert (f.method, f.n_diverged) == (SIGN_TEST, 2)
    assert f.other_mean == pytest.approx(frame["other_mse"].drop(2).mean())


def test_diverged_flags_read_as_text_as_cells_csv_has_them():
    frame = pairs(exact(-0.1, 0.01)).astype({"other_diverged": object})
    frame["other_diverged"] = ["False"] * 19 + [" true"]  # a column mixing text and gaps reads so
    assert judge(STRICT, frame, M).n_diverged == 1


def test_pairs_where_both_diverged_are_dropped():
    delta = exact(-0.1, 0.05)
    f = judge(STRICT, pairs(delta, better_diverged=[0, 1], other_diverged=[0, 1]), M)
    assert (f.method, f.n, f.n_diverged, f.verdict) == (PAIRED_T, 20, 2, CONFIRMED)
    assert f.mean == pytest.approx(delta[2:].mean())


@pytest.mark.parametrize("strict", [STRICT, NOT_BEATEN])
def test_a_side_whose_every_model_diverges_loses(strict):
    """Five seeds: the sign test alone (p 0.0625) could decide nothing."""
    better_lost = judge(strict, pairs(np.zeros(5), better_diverged=range(5)), M)
    other_lost = judge(strict, pairs(np.zeros(5), better_diverged=[0], other_diverged=range(5)), M)
    assert (better_lost.verdict, other_lost.verdict) == (REFUTED, CONFIRMED)
    assert decide(strict, better_lost.ci95, better_lost.ci90, better_lost.upper95, M) == UNDECIDED
    assert math.isnan(better_lost.better_mean) and better_lost.n_diverged == 5
    both = judge(strict, pairs(np.zeros(5), better_diverged=range(5), other_diverged=range(5)), M)
    assert both.verdict == UNDECIDED


def test_no_pairs_decide_nothing():
    f = judge(STRICT, pairs([]), M)
    assert (f.verdict, f.n, f.seeds_needed) == (UNDECIDED, 0, None)
    assert math.isnan(f.mean)


def test_the_margin_must_be_positive():
    with pytest.raises(ValueError, match="margin"):
        judge(STRICT, pairs(exact(0, 1)), 0.0)


def test_weakest_takes_the_weakest_part():
    assert weakest([CONFIRMED, EQUIVALENT]) == EQUIVALENT
    assert weakest([EQUIVALENT, UNDECIDED, CONFIRMED]) == UNDECIDED
    assert weakest([UNDECIDED, REFUTED]) == REFUTED
    assert weakest([NOT_TESTABLE, UNDECIDED]) == NOT_TESTABLE
    assert weakest([REFUTED, NOT_TESTABLE]) == REFUTED
    assert weakest([CONFIRMED]) == CONFIRMED


def test_margin_is_a_fraction_of_the_test_labels_variance(tmp_path):
    labels = np.array([0.0, 1.0, 2.0, 5.0])
    split = tmp_path / "test.csv"
    pd.DataFrame({"x": [1.0, 2.0, 3.0, 4.0], "label": labels}).to_csv(split, index=False)
    assert margin(split, 0.01) == pytest.approx(0.01 * labels.var())  # population variance, as test_mse_rel's
    with pytest.raises(ValueError, match="confirm.margin"):
        margin(split, 0.0)


# Each case: (strict, mean, sd) of Δ, what the seeds needed are for, the verdict they should reach.
SCENARIOS = [
    (STRICT, -0.9, 1.0, "Δ < 0", CONFIRMED),  # its mirror, Δ > 0 to refute, is the same power
    (STRICT, 0.0, 0.03, "-m < Δ < m", EQUIVALENT),
    (NOT_BEATEN, 0.0, 0.05, "Δ < m", CONFIRMED),
    (NOT_BEATEN, 0.12, 0.1, "Δ > 0", REFUTED),
]
REPEATS = 10_000  # Monte Carlo error of a power near 0.8: ±0.004
TOLERANCE = 0.016  # four of it


def simulated_power(strict: bool, mean: float, sd: float, n: int, verdict: str) -> float:
    """How often n fresh seeds of normal Δ reach `verdict` by the rule itself (decide on scipy's intervals)."""
    delta = np.random.default_rng(n).normal(mean, sd, size=(REPEATS, n))
    test = stats.ttest_1samp(delta, 0.0, axis=1)
    upper = stats.ttest_1samp(delta, 0.0, axis=1, alternative="less").confidence_interval(0.95).high
    ci95, ci90 = test.confidence_interval(0.95), test.confidence_interval(0.90)
    return float(np.mean(decide(strict, ci95, ci90, upper, M) == verdict))


@pytest.mark.parametrize(("strict", "mean", "sd", "target", "verdict"), SCENARIOS)
def test_seeds_needed_reach_80_percent_power_and_one_fewer_does_not(strict, mean, sd, target, verdict):
    n, needed_for = seeds_needed(strict, mean, sd, M)
    assert needed_for == target and 3 <= n <= 40
    assert simulated_power(strict, mean, sd, n, verdict) >= 0.8 - TOLERANCE
    assert simulated_power(strict, mean, sd, n - 1, verdict) < 0.8 + TOLERANCE


def test_seeds_needed_takes_the_nearer_verdict():
    """A tiny difference with a tiny spread is shown below 0 sooner than inside the margin, and the reverse."""
    assert seeds_needed(STRICT, -0.038, 0.002, M)[1] == "Δ < 0"
    assert seeds_needed(STRICT, -0.002, 0.05, M)[1] == "-m < Δ < m"


def test_seeds_needed_where_none_will_do():
    assert seeds_needed(STRICT, 0.0, 100.0, M) == (None, "")  # no difference to show, far too wide for m
    assert seeds_needed(STRICT, 0.1, 0.0, M) == (None, "")  # no spread to work from
    assert seeds_needed(NOT_BEATEN, math.nan, 1.0, M) == (None, "")


def test_an_undecided_part_says_how_many_seeds_would_decide_it():
    f = judge(NOT_BEATEN, pairs(exact(-0.0055, 0.05, n=5)), M)
    assert f.verdict == UNDECIDED
    assert (f.seeds_needed, f.needed_for) == seeds_needed(NOT_BEATEN, f.mean, f.sd, M)
    assert f.seeds_needed > 5
