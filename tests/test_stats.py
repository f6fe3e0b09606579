"""Statistics on synthetic cells whose answer is known by construction."""

import itertools
import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from genboost.analysis.stats import (
    NO_PAIRS,
    best_lrs,
    cell_stats,
    csv_flags,
    effect_verdict,
    is_diverged,
    min_pairs,
    paired,
    paired_tests,
    rank_correlations,
)
from genboost.analysis.stats_report import stats_markdown

LRS, WDS, RHOS, SEEDS = [1e-4, 1e-3, 1e-2], [0.0, 1e-3], [0.0, 0.05], range(4)


def synthetic(sam_effect=0.0, wd_effect=0.0, adam_effect=0.0, noise=0.01, seed=0, experiment="main"):
    """Test MSE = a bowl in log lr (best at 1e-3) + per-seed offset + effects + independent noise."""
    rng = np.random.default_rng(seed)
    seed_offset = rng.normal(0, 0.05, len(SEEDS))  # shared by both sides of a pair: pairing removes it
    rows = []
    for opt, lr, wd, rho, s in itertools.product(["sgd", "adam"], LRS, WDS, RHOS, SEEDS):
        mse = 1.0 + 0.2 * abs(math.log10(lr) + 3) + seed_offset[s] + rng.normal(0, noise)
        mse += sam_effect * (rho > 0) + wd_effect * (wd > 0) + adam_effect * (opt == "adam")
        rows.append(
            dict(experiment=experiment, optimizer=opt, lr=lr, wd=wd, rho=rho, seed=s, test_mse=mse,
                 train_mse=mse - 0.3, diverged=False)
        )  # fmt: skip
    return pd.DataFrame(rows)


def row(result: pd.DataFrame, **where) -> pd.Series:
    sel = result
    for k, v in where.items():
        sel = sel[sel[k] == v]
    assert len(sel) == 1, where
    return sel.iloc[0]


def test_cell_stats_mean_std_and_t_interval():
    cells = synthetic()
    s = cell_stats(cells)
    assert len(s) == 2 * len(LRS) * len(WDS) * len(RHOS) and (s["n"] == len(SEEDS)).all()
    one = row(s, optimizer="sgd", lr=1e-3, wd=0.0, rho=0.0)
    vals = cells[(cells.optimizer == "sgd") & (cells.lr == 1e-3) & (cells.wd == 0) & (cells.rho == 0)].test_mse
    half = sps.t.ppf(0.975, 3) * vals.std(ddof=1) / 2
    assert one["mean"] == pytest.approx(vals.mean()) and one["std"] == pytest.approx(vals.std(ddof=1))
    assert (one["ci_low"], one["ci_high"]) == pytest.approx((vals.mean() - half, vals.mean() + half))


def test_cell_stats_undefined_with_a_diverged_seed_or_one_seed():
    cells = synthetic()
    hit = (cells.optimizer == "adam") & (cells.lr == 1e-2) & (cells.wd == 0) & (cells.rho == 0)
    cells.loc[hit & (cells.seed == 1), ["test_mse", "diverged"]] = [math.nan, True]
    single = (cells.optimizer == "sgd") & (cells.lr == 1e-4) & (cells.wd == 0) & (cells.rho == 0) & (cells.seed > 0)
    s = cell_stats(cells[~single])
    bad = row(s, optimizer="adam", lr=1e-2, wd=0.0, rho=0.0)
    assert bad["diverged"] == 1 and all(math.isnan(bad[k]) for k in ("mean", "std", "ci_low", "ci_high"))
    lone = row(s, optimizer="sgd", lr=1e-4, wd=0.0, rho=0.0)
    assert lone["n"] == 1 and not math.isnan(lone["mean"]) and math.isnan(lone["ci_low"]) and math.isnan(lone["std"])


def test_best_lr_is_the_lr_of_the_lowest_mean():
    cells = synthetic()
    cells.loc[(cells.optimizer == "adam") & (cells.lr == 1e-2) & (cells.wd > 0), "test_mse"] -= 1.0
    assert best_lrs(cells) == {("main", "sgd"): 1e-3, ("main", "adam"): 1e-2}


def test_clear_sam_effect_is_supported_and_noise_is_not():
    result = paired(synthetic(sam_effect=-0.05), "sam")
    assert set(result["optimizer"]) == {"all", "sgd", "adam"} and set(result["lrs"]) == {"all", "best"}
    for _, r in result.iterrows():
        assert r["mean_diff"] == pytest.approx(-0.05, abs=0.02) and r["ci_high"] < 0
        assert r["p_t"] < 1e-3 and r["p_wilcoxon"] < 0.01
        assert effect_verdict(r) == "supported: lowers test MSE"
    overall = row(result, optimizer="all", lrs="all")
    assert overall["n_pairs"] == 2 * len(LRS) * len(WDS) * len(SEEDS)
    assert row(result, optimizer="sgd", lrs="best")["n_pairs"] == len(WDS) * len(SEEDS)
    up = paired(synthetic(wd_effect=+0.05), "wd")
    assert all(effect_verdict(r) == "supported: raises test MSE" for _, r in up.iterrows())


def test_pure_noise_is_within_noise():
    # Big per-seed offsets, no effect: unpaired tests could be fooled by nothing here, paired ones see noise.
    verdicts = []
    for seed in range(5):
        for factor in ("sam", "wd", "optimizer"):
            result = paired(synthetic(seed=seed), factor)
            verdicts += [effect_verdict(r) for _, r in result.iterrows()]
            assert (result["ci_low"] < result["mean_diff"]).all() and (result["mean_diff"] < result["ci_high"]).all()
    # 5 x 14 comparisons at alpha 0.05 with two tests required: at most the nominal 5% false positives.
    assert len(verdicts) == 70 and len(verdicts) - verdicts.count("within noise") <= 0.05 * len(verdicts)
    assert not any(v.startswith("supported") for v in verdicts[:14])


def test_pairing_ignores_row_order():
    cells = synthetic(sam_effect=-0.01, noise=0.02, seed=3)
    shuffled = cells.sample(frac=1.0, random_state=7).reset_index(drop=True)
    for factor in ("sam", "wd", "optimizer"):
        pd.testing.assert_frame_equal(paired(cells, factor), paired(shuffled, factor))


def test_pairs_are_matched_by_seed():
    """Control = treatment + 0.1 for the same seed: a mismatched pairing would show the large per-seed offsets."""
    cells = synthetic(noise=0.0)
    on = cells.rho > 0
    cells.loc[on, "test_mse"] = cells.loc[~on, "test_mse"].to_numpy() - 0.1
    r = row(paired(cells, "sam"), optimizer="all", lrs="all")
    assert r["mean_diff"] == pytest.approx(-0.1) and r["ci_high"] - r["ci_low"] == pytest.approx(0, abs=1e-9)


def test_a_diverged_seed_drops_its_pair():
    cells = synthetic(sam_effect=-0.05)
    hit = (cells.optimizer == "sgd") & (cells.lr == 1e-4) & (cells.wd == 0) & (cells.rho == 0.05) & (cells.seed == 2)
    cells.loc[hit, ["test_mse", "diverged"]] = [math.nan, True]
    result = paired(cells, "sam")
    r = row(result, optimizer="sgd", lrs="all")
    assert r["n_pairs"] == len(LRS) * len(WDS) * len(SEEDS) - 1 and r["n_dropped"] == 1
    assert not math.isnan(r["mean_diff"]) and not math.isnan(r["p_t"])
    assert row(result, optimizer="adam", lrs="all")["n_dropped"] == 0
    # The same divergence read back from cells.csv: an empty test_mse and the text "True".
    as_csv = cells.assign(diverged=cells["diverged"].map(str)).astype({"diverged": object})
    pd.testing.assert_frame_equal(paired(as_csv, "sam"), result)


def test_flags_read_back_from_csv_are_read_one_way():
    """True/False as pandas reads them, or as text where a column has gaps; a gap is what the caller says or an
    error, as is any other value."""
    text = pd.Series([True, "True", " false", "1", 0.0, math.nan], name="diverged", dtype=object)
    assert csv_flags(text, gap=False).tolist() == [True, True, False, True, False, False]
    with pytest.raises(ValueError, match="cells.csv: diverged must be True or False, got nan"):
        csv_flags(text)
    with pytest.raises(ValueError, match="diverged must be True or False, got 'yes'"):
        csv_flags(pd.Series([True, "yes"], name="diverged"), gap=False)
    cells = pd.DataFrame({"diverged": [False, "", "True"], "test_mse": [0.1, 0.2, math.nan]}).replace("", math.nan)
    assert is_diverged(cells).tolist() == [False, False, True]


def test_optimizer_comparison_at_best_lrs_pairs_the_two_best_lrs():
    cells = synthetic(adam_effect=-0.03)
    cells.loc[(cells.optimizer == "adam") & (cells.lr >= 1e-3), "test_mse"] += 1.0  # Adam's best lr becomes 1e-4
    assert best_lrs(cells)[("main", "adam")] == 1e-4
    r = row(paired(cells, "optimizer"), lrs="best")
    # Adam at 1e-4 (bowl +0.2, effect -0.03) against SGD at 1e-3 (bowl 0): +0.17 on average.
    assert r["n_pairs"] == len(WDS) * len(RHOS) * len(SEEDS) and r["mean_diff"] == pytest.approx(0.17, abs=0.01)


def test_paired_tests_edge_cases():
    assert paired_tests(np.array([]))["n_pairs"] == 0
    one = paired_tests(np.array([0.3]))
    assert one["mean_diff"] == 0.3 and math.isnan(one["p_t"]) and effect_verdict(one) == "not testable"
    zeros = paired_tests(np.zeros(5))
    zeros = paired_tests(np.zeros(6))
    assert zeros["p_t"] == 1.0 and zeros["p_wilcoxon"] == 1.0 and effect_verdict(zeros) == "within noise"
    # 5 pairs: the Wilcoxon cannot reach 0.05 (2/32), so even a clear t-test leaves it not testable; 6 can (2/64).
    assert min_pairs(0.05) == 6 and min_pairs(0.01) == 8
    five = paired_tests(np.array([-0.10, -0.11, -0.09, -0.10, -0.12]))
    assert five["p_t"] < 0.001 and five["p_wilcoxon"] > 0.05 and effect_verdict(five) == "not testable"
    six = paired_tests(np.array([-0.10, -0.11, -0.09, -0.10, -0.12, -0.105]))
    assert six["p_wilcoxon"] < 0.05 and effect_verdict(six) == "supported: lowers test MSE"
    # Both tests must agree: four large drops carry the t-test, but half the signs go the other way.
    mixed = paired_tests(np.array([-1.0, -1.1, -0.9, -1.05, 0.01, 0.02, 0.015, 0.012]))
    assert mixed["p_t"] < 0.05 and mixed["p_wilcoxon"] > 0.05 and effect_verdict(mixed) == "within noise"


def test_bad_factor_and_duplicate_rows_are_refused():
    cells = synthetic()
    with pytest.raises(ValueError, match="factor"):
        paired(cells, "lr")
    with pytest.raises(ValueError, match="more than one row"):
        paired(pd.concat([cells, cells.iloc[:1]]), "sam")


def test_rank_correlations_known_order():
    cells = synthetic(seed=1)
    cells["sharp"] = cells["test_mse"] * 10  # same order as test MSE: tau = 1
    cells["noise"] = np.random.default_rng(0).normal(size=len(cells))
    cells["train_mse"] = 0.0  # gap = test_mse exactly
    cells["constant"] = 0.3
    cells.loc[0, ["test_mse", "diverged"]] = [math.nan, True]
    corr = rank_correlations(cells, ["sharp", "noise"], ["test_mse", "gap", "constant"])
    assert len(corr) == 3 * 2 * 3
    r = row(corr, optimizer="all", measure="sharp", target="test_mse")
    assert r["tau"] == pytest.approx(1.0) and r["p"] < 1e-10 and r["n"] == len(cells) - 1
    assert row(corr, optimizer="sgd", measure="sharp", target="test_mse")["tau"] == pytest.approx(1.0)
    assert abs(row(corr, optimizer="all", measure="noise", target="test_mse")["tau"]) < 0.15
    assert row(corr, optimizer="adam", measure="sharp", target="gap")["tau"] == pytest.approx(1.0)
    assert math.isnan(row(corr, optimizer="all", measure="sharp", target="constant")["tau"])
    with pytest.raises(ValueError, match="no column 'missing'"):
        rank_correlations(cells, ["missing"])


def test_markdown_names_supported_and_noise_conclusions():
    cells = pd.concat([synthetic(sam_effect=-0.05), synthetic(seed=4, experiment="other")], ignore_index=True)
    cells["sharp"] = cells["test_mse"]
    text = stats_markdown(cells, measures=["sharp"], targets=["test_mse"])
    main, other = text.split("### main")[1].split("### other")
    assert "Supported by the data:" in main and "SAM rho=0.05 vs no SAM (SGD, each at its best lr): supported" in main
    assert "wd=0.001 vs wd=0 (all optimizers, all lrs): within noise" in main
    assert "SAM rho=0.05 vs no SAM (all optimizers, all lrs): within noise" in other
    assert "| SAM rho=0.05 vs no SAM | sgd" in main and "sharp vs test_mse (all optimizers" in text


def test_a_comparison_whose_every_pair_has_a_diverged_side_has_nothing_to_compare():
    cells = synthetic(sam_effect=-0.05)
    cells.loc[cells.rho > 0, ["test_mse", "diverged"]] = [math.nan, True]
    sam = paired(cells, "sam")
    assert (sam["n_pairs"] == 0).all() and all(effect_verdict(r) == NO_PAIRS for _, r in sam.iterrows())
    text = stats_markdown(cells)
    assert "Nothing to compare (every pair has a diverged side):" in text
    assert f"SAM rho=0.05 vs no SAM (all optimizers, all lrs): nothing to compare: each of its {2 * 3 * 2 * 4}" in text
    assert "wd=0.001 vs wd=0 (all optimizers, all lrs): within noise" in text


def test_one_optimizer_lists_each_comparison_once_and_counts_the_rows():
    """With one optimizer the "all optimizers" rows would repeat its own: they go, and the count is the rows'."""
    adam = synthetic(sam_effect=-0.05).query("optimizer == 'adam'")
    text = stats_markdown(adam)
    table = text.split("All comparisons")[1]
    rows = [line for line in table.splitlines() if line.startswith("| ") and not line.startswith("| comparison")]
    optimizers = [row.split("|")[2].strip() for row in rows]
    assert optimizers == ["adam"] * 4  # SAM and wd, over all lrs and at the best lr: ADAM's rows only
    assert "(all optimizers" not in text
    assert "Of the 4 comparisons listed below, 4 are tested" in text and "pooled over the grid" in text
    both = synthetic(sam_effect=-0.05)
    assert "SAM rho=0.05 vs no SAM (all optimizers, all lrs)" in stats_markdown(both), "two: the pooled rows stay"
    both.loc[both["optimizer"] == "sgd", ["test_mse", "diverged"]] = [math.nan, True]
    lost = stats_markdown(both)  # SGD has no complete pair: the pooled rows are ADAM's again
    assert "SAM rho=0.05 vs no SAM (all optimizers" not in lost and "SAM rho=0.05 vs no SAM (ADAM, all lrs)" in lost


def test_nothing_to_compare_and_no_models_are_said_not_raised():
    one = synthetic().query("optimizer == 'adam' and wd == 0 and rho == 0 and lr == 1e-3")
    text = stats_markdown(one, measures=["train_mse"], targets=["test_mse"])
    assert "Nothing to compare: no two models differ in SAM, weight decay or optimizer alone" in text
    assert (
        "Of the 0 comparisons listed below, 0 are tested" in text
        and "- Best ADAM (defines its best lr): lr=0.001" in text
    )
    assert "train_mse vs test_mse (all optimizers, 4 models)" in text
    lone = stats_markdown(one[one.seed == 0], measures=["train_mse"], targets=["test_mse"])
    assert "(all optimizers, 1 models): tau=–, p=–: nothing to compare" in lone
    assert "No models: nothing to compare." in stats_markdown(one.iloc[:0])


def test_only_scipys_precision_loss_warning_is_silenced(monkeypatch):
    """Identical differences (every seed moved alike) make scipy warn of precision loss: expected, silenced.
    Any other warning still reaches the caller."""
    import warnings

    from genboost.analysis import stats

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        same = paired_tests(np.array([0.3, 0.3, 0.3]))
    assert same["p_t"] == 0.0 and same["n_pairs"] == 3

    class Noisy:
        def ttest_1samp(self, *args):
            warnings.warn("something else", RuntimeWarning, stacklevel=1)
            return sps.ttest_1samp(*args)

        def __getattr__(self, name):
            return getattr(sps, name)

    monkeypatch.setattr(stats, "_scipy_stats", Noisy)
    with pytest.warns(RuntimeWarning, match="something else"):
        paired_tests(np.array([0.1, -0.2, 0.3]))
