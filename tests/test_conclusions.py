"""The talk's four conclusions on synthetic cells whose answer is known by construction, and verdicts that flip."""

import numpy as np
import pandas as pd
import pytest
from compare_helpers import SEEDS, cells_frame
from scipy import stats as sps

from genboost.compare.conclusions import (
    NOT_REPRODUCED,
    NOT_TESTABLE,
    REPRODUCED,
    WITHIN_NOISE,
    conclusions_markdown,
    evaluate,
    evaluate_published,
)
from genboost.compare.matrix import conclusion_matrix

BEST_PLAIN = dict(optimizer="adam", rho=0.0, lr=3e-3, wd=1e-4)  # the fixture's best configuration (1.0 + seed)
SAM_BEST = {**BEST_PLAIN, "rho": 0.05}  # the fixture's best SAM configuration (1.1 + seed)
SECOND_BEST = {**BEST_PLAIN, "rho": 0.02}  # the second chance's best (1.1 + seed)
ALL_REPRODUCED = dict(C1=REPRODUCED, C2=REPRODUCED, C3=REPRODUCED, C4=REPRODUCED)


def where(cells: pd.DataFrame, **config) -> pd.Series:
    return np.logical_and.reduce([np.isclose(cells[k], v) if k != "optimizer" else cells[k] == v
                                  for k, v in config.items()])  # fmt: skip


def shifted(cells: pd.DataFrame, by, **config) -> pd.DataFrame:
    """`by` (one number, or one per seed) added to the test MSE of one configuration."""
    out = cells.copy()
    hit = where(out, **config)
    out.loc[hit, "test_mse"] = out.loc[hit, "test_mse"].to_numpy() + np.asarray(by, dtype=float)
    return out


def seed_values(cells: pd.DataFrame, **config) -> np.ndarray:
    return cells[where(cells, **config)].sort_values("seed")["test_mse"].to_numpy()


@pytest.fixture
def main() -> pd.DataFrame:
    return cells_frame()


@pytest.fixture
def second() -> pd.DataFrame:
    return cells_frame("second_chance", opts=["adam"], rhos=[0.02], noise_seed=1)


def verdicts(main, second) -> dict[str, str]:
    return {c.key: c.verdict for c in evaluate(main, second)}


def test_the_fixture_reproduces_all_four_with_the_paired_statistics(main, second):
    result = {c.key: c for c in evaluate(main, second)}
    assert {k: c.verdict for k, c in result.items()} == ALL_REPRODUCED
    c2 = result["C2"].parts[0]
    assert (c2.better["rho"], c2.better["lr"], c2.better["wd"]) == (0.0, 3e-3, 1e-4)
    assert (c2.other["optimizer"], c2.other["rho"], c2.other["lr"], c2.other["wd"]) == ("adam", 0.05, 3e-3, 1e-4)
    plain, sam = seed_values(main, **BEST_PLAIN), seed_values(main, **SAM_BEST)
    assert c2.delta == pytest.approx(plain.mean() - sam.mean()) and c2.delta == pytest.approx(-0.1, abs=0.01)
    assert c2.stats["n_pairs"] == len(SEEDS) and c2.stats["p_t"] == pytest.approx(sps.ttest_rel(plain, sam).pvalue)
    c4 = result["C4"].parts[0]
    assert (c4.better["experiment"], c4.other["experiment"], c4.other["rho"]) == ("main", "second_chance", 0.02)
    assert c4.stats["p_t"] == pytest.approx(sps.ttest_rel(plain, seed_values(second, **SECOND_BEST)).pvalue)


@pytest.mark.parametrize(
    "change, expected",
    [
        # wd = 0 at Adam lr 3e-3 becomes best: weight decay no longer improves it, on every seed
        (lambda m, s: (shifted(m, -0.2, optimizer="adam", rho=0, lr=3e-3, wd=0), s), dict(C1=NOT_REPRODUCED)),
        # a SAM configuration beats the best plain one on every seed
        (lambda m, s: (shifted(m, -0.2, **SAM_BEST), s), dict(C2=NOT_REPRODUCED)),
        # SGD becomes best overall: C3 and C1's "Adam at lr 3e-3 is best" both fail
        (lambda m, s: (shifted(m, -0.8, **{**BEST_PLAIN, "optimizer": "sgd"}), s),
         dict(C1=NOT_REPRODUCED, C3=NOT_REPRODUCED)),
        # the second chance beats plain Adam on every seed
        (lambda m, s: (m, shifted(s, -0.2, **SECOND_BEST)), dict(C4=NOT_REPRODUCED)),
        (lambda m, s: (m, None), dict(C4=NOT_TESTABLE)),
        (lambda m, s: (m[m["optimizer"] == "adam"], s), dict(C3=NOT_TESTABLE)),
        (lambda m, s: (None, s), dict(C1=NOT_TESTABLE, C2=NOT_TESTABLE, C3=NOT_TESTABLE, C4=NOT_TESTABLE)),
    ],
)  # fmt: skip
def test_a_verdict_flips_when_the_numbers_change(main, second, change, expected):
    assert verdicts(*change(main, second)) == {**ALL_REPRODUCED, **expected}


def test_the_other_way_but_not_significant_is_within_noise(main, second):
    plain = seed_values(main, **BEST_PLAIN)
    sam = plain + np.array([-0.5, 0.2, 0.25])  # lower on average, but not seed by seed
    changed = shifted(main, sam - seed_values(main, **SAM_BEST), **SAM_BEST)
    c2 = next(c for c in evaluate(changed, second) if c.key == "C2")
    p = sps.ttest_rel(plain, sam).pvalue
    assert plain.mean() - sam.mean() > 0 and p > 0.05  # the fixture does what it says
    assert c2.verdict == WITHIN_NOISE and c2.parts[0].delta == pytest.approx(plain.mean() - sam.mean())
    assert c2.parts[0].stats["p_t"] == pytest.approx(p)


def test_a_configuration_with_a_diverged_seed_cannot_be_best(main, second):
    hit = where(main, **BEST_PLAIN) & (main["seed"] == 1)
    main = main.copy()
    main.loc[hit, ["test_mse", "diverged"]] = [np.nan, True]
    c1 = next(c for c in evaluate(main, second) if c.key == "C1")
    assert c1.verdict == NOT_TESTABLE
    assert c1.parts[1].verdict == NOT_TESTABLE and "diverged" in c1.parts[1].reason  # its only wd > 0 config
    best = c1.parts[0].better
    assert (best["rho"], best["wd"]) != (0.0, 1e-4) and not np.isnan(best["mean"])


def test_a_refuted_part_outweighs_an_untestable_one(main, second):
    main = shifted(main, -0.8, **{**BEST_PLAIN, "optimizer": "sgd"})  # SGD best: "Adam at lr 3e-3 is best" fails
    main.loc[where(main, **BEST_PLAIN) & (main["seed"] == 1), ["test_mse", "diverged"]] = [np.nan, True]
    c1 = next(c for c in evaluate(main, second) if c.key == "C1")
    assert [o.verdict for o in c1.parts] == [NOT_REPRODUCED, NOT_TESTABLE] and c1.verdict == NOT_REPRODUCED


def test_a_published_table_can_only_point_the_other_way(main):
    means = main.groupby(["experiment", "optimizer", "rho", "lr", "wd"], as_index=False)["test_mse"].mean()
    rows = means.rename(columns={"test_mse": "mean_test_mse"})
    assert {c.key: c.verdict for c in evaluate_published(rows)}["C2"] == REPRODUCED
    sam_wins = rows.assign(mean_test_mse=rows["mean_test_mse"] - 0.2 * (rows["rho"] > 0))
    c2 = next(c for c in evaluate_published(sam_wins) if c.key == "C2")
    assert c2.verdict == NOT_REPRODUCED and c2.parts[0].stats["n_pairs"] == 0  # no seeds: no "within noise"


def test_conclusion_matrix_shows_a_flip_between_setups(main, second):
    sam_helps = shifted(main, -0.2, **SAM_BEST)
    setups = {"baseline": (main, second), "sam helps": (sam_helps, second), "again": (main, second)}
    text = conclusion_matrix({**setups, "no second chance": (main, None)})
    header, _, *rows = text.splitlines()[:6]
    assert [h.strip() for h in header.strip("|").split("|")] == ["conclusion", *setups, "no second chance"]
    c2_row = next(r for r in rows if r.startswith("| C2"))
    plain = seed_values(main, **BEST_PLAIN)
    before, after = plain - seed_values(main, **SAM_BEST), plain - seed_values(sam_helps, **SAM_BEST)
    assert f"reproduced (Δ {before.mean():+.3f}, p {sps.ttest_1samp(before, 0).pvalue:.2g})" in c2_row
    assert f"not reproduced (Δ {after.mean():+.3f}, p {sps.ttest_1samp(after, 0).pvalue:.2g})" in c2_row
    assert "- sam helps: flips C2 (reproduced → not reproduced) relative to baseline" in text
    assert "- again: flips no conclusion relative to baseline" in text
    # a conclusion a setup cannot test is said so, not counted as a flip
    assert "- no second chance: flips no conclusion relative to baseline (C4 not testable there)" in text


def test_conclusions_markdown_sets_the_talks_verdict_beside_ours(main, second):
    rows = main.groupby(["experiment", "optimizer", "rho", "lr", "wd"], as_index=False)["test_mse"].mean()
    talk = evaluate_published(rows.rename(columns={"test_mse": "mean_test_mse"}))
    text = conclusions_markdown(evaluate(main, second), talk)
    assert "- **C4** a second chance for SAM (rho 0.02, 200 epochs) does not beat plain Adam: **reproduced** " in text
    assert "(the talk's own numbers: not testable)" in text  # the talk's side was given no second chance rows
    assert text.count("| C1 ") == 2  # C1 has two parts


def test_the_rule_is_stated_under_python_OO(repo_root):
    """vs_talk.md states the rule from a constant: `python -OO` drops docstrings, which it was once built from."""
    import subprocess
    import sys

    from genboost.compare.conclusions import RULE

    code = "from genboost.compare.conclusions import RULE; print(RULE)"
    env = {"PYTHONPATH": str(repo_root), "PATH": "/usr/bin:/bin"}
    run = subprocess.run([sys.executable, "-OO", "-c", code], capture_output=True, text=True, cwd=repo_root, env=env)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == RULE and RULE.startswith("The rule, one for all four") and "\n" not in RULE


def test_a_claim_the_numbers_cannot_test_names_the_missing_side(main, second):
    adam_only = {c.key: c for c in evaluate(main[main["optimizer"] == "adam"], None)}
    assert (adam_only["C3"].verdict, adam_only["C3"].parts[0].reason) == (NOT_TESTABLE, "the grid has no SGD")
    assert adam_only["C4"].parts[0].reason == (
        "no experiment continues this one (config key continues: its second chance)"
    )
    means = main.groupby(["experiment", "optimizer", "rho", "lr", "wd"], as_index=False)["test_mse"].mean()
    table = means[~np.isclose(means["lr"], 3e-3)].rename(columns={"test_mse": "mean_test_mse"})
    c1 = next(c for c in evaluate_published(table) if c.key == "C1")
    assert [o.reason for o in c1.parts] == [
        "the table has no Adam at lr 3e-3",
        "the table has no Adam at lr 3e-3 without SAM and wd > 0",
    ]


def test_each_best_side_quotes_its_test_mse_relative_to_the_label_variance(main, second):
    plain = seed_values(main, **BEST_PLAIN).mean()
    text = conclusions_markdown(evaluate(main.assign(test_mse_rel=main["test_mse"] / 4), second))
    assert f"best plain: {plain:.4f}, rel {plain / 4:.3f} (Adam lr 0.003 wd 0.0001, no SAM)" in text
    assert "1.0 is what always predicting the test labels' mean scores" in text and "best against best" in text
    assert ", rel " not in conclusions_markdown(evaluate(main, second)), "no relative numbers, none quoted"
