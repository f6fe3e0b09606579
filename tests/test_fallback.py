"""A side whose every grid configuration has a diverged seed (genboost.compare.picks): the grid cannot judge its claim,
the confirmation still does, with the side's fallback pick (the most finished grid seeds, then the lowest mean over
them), and every report names the pick as such. Where the side has a best, nothing changes."""

import math

import pandas as pd
import pytest

from genboost.compare import confirmed, selection
from genboost.compare.conclusions import NOT_TESTABLE, REPRODUCED, conclusions_markdown, evaluate
from genboost.compare.confirm import CONFIRMED, REFUTED, RULES, SIGN_TEST
from genboost.compare.confirm_report import confirm, confirmed_markdown, curse_line, verdict_cell, winners_curse
from genboost.compare.picks import FALLBACK

M = 0.04
ADAM = [("adam", 3e-3, 1e-4, 0.0, [1.0, 1.1, 0.9]), ("adam", 1e-3, 0.0, 0.0, [1.2, 1.3, 1.1])]
SGD = [
    ("sgd", 1e-3, 0.0, 0.0, [1.4, None, None]),  # the lowest mean over its finished seeds, but only one finished
    ("sgd", 3e-3, 0.0, 0.0, [1.8, 1.6, None]),  # two finished, mean 1.7
    ("sgd", 1e-2, 0.0, 0.0, [1.5, 1.7, None]),  # two finished, mean 1.6: the fallback pick
    ("sgd", 3e-2, 0.0, 0.0, [None, None, None]),
]
ALL_FINISHED = ("sgd", 3e-4, 0.0, 0.0, [2.5, 2.6, 2.4])  # worse than any, but the one SGD with a mean


def grid(rows, seeds=(0, 1, 2), experiment="main") -> pd.DataFrame:
    """cells.csv rows from (optimizer, lr, wd, rho, test MSE per seed; None: that seed diverged)."""
    out = [dict(experiment=experiment, optimizer=o, lr=lr, wd=wd, rho=rho, seed=s, test_mse=math.nan if v is None
                else v, test_mse_rel=math.nan if v is None else v / 2, diverged=v is None)
           for o, lr, wd, rho, values in rows for s, v in zip(seeds, values, strict=True)]  # fmt: skip
    return pd.DataFrame(out)


def c3(cells: pd.DataFrame):
    return next(c for c in evaluate(cells) if c.key == "C3")


def fresh(adam: list, sgd: list) -> pd.DataFrame:
    """Fresh models of the grid's Adam best and the SGD fallback pick (None: diverged), seeds 1000 on."""
    seeds = range(1000, 1000 + len(adam))
    return grid([("adam", 3e-3, 1e-4, 0.0, adam), ("sgd", 1e-2, 0.0, 0.0, sgd)], seeds)


def test_the_fallback_takes_the_most_finished_seeds_then_the_lowest_mean_over_them():
    part = c3(grid(ADAM + SGD)).parts[0]
    assert part.verdict == NOT_TESTABLE  # the grid's seeds still cannot judge it
    assert part.reason == "every SGD configuration of the grid has a diverged seed"
    assert part.better["lr"] == 3e-3 and part.better["diverged"] == 0  # Adam's side has a best: today's pick
    pick = part.other
    assert (pick["optimizer"], pick["lr"], pick["n"], pick["diverged"]) == ("sgd", 1e-2, 3, 1)
    assert pick["mean"] == pytest.approx(1.6) and pick["rel"] == pytest.approx(0.8)  # over its finished seeds
    tie = grid(ADAM + [*SGD[:2], ("sgd", 1e-2, 0.0, 0.0, [1.8, 1.6, None])])  # lr 3e-3 and 1e-2 tie: the first
    assert c3(tie).parts[0].other["lr"] == 3e-3


def test_a_side_whose_every_model_diverged_takes_its_first_configuration():
    pick = c3(grid(ADAM + [SGD[3], ("sgd", 1e-4, 0.0, 0.0, [None] * 3)])).parts[0].other
    assert (pick["lr"], pick["diverged"]) == (1e-4, 3) and math.isnan(pick["mean"])  # sorted by lr: 1e-4 first


def test_a_side_with_a_best_ignores_the_fallback_and_its_numbers_stay():
    part = c3(grid(ADAM + SGD + [ALL_FINISHED])).parts[0]
    assert part.other["lr"] == 3e-4 and part.other["diverged"] == 0
    assert part.verdict == REPRODUCED and part.delta == pytest.approx(1.0 - 2.5)
    assert part.stats["n_pairs"] == 3 and part.stats["mean_diff"] == pytest.approx(-1.5)
    rows = selection.selected(evaluate(grid(ADAM + SGD + [ALL_FINISHED])))
    sgd = rows[(rows["conclusion"] == "C3") & (rows["side"] == "other")].iloc[0]
    assert (sgd["lr"], sgd["grid_mean"], sgd["grid_seeds"], sgd["grid_diverged"]) == ("0.0003", 2.5, 3, 0)
    assert (rows["grid_diverged"] == 0).all()


def test_a_side_the_grid_lacks_stays_not_testable_naming_it():
    part = c3(grid(SGD)).parts[0]
    assert (part.verdict, part.reason, part.better, part.other) == (NOT_TESTABLE, "the grid has no Adam", None, None)
    assert "C3" not in set(selection.selected(evaluate(grid(SGD)))["conclusion"])
    adam_diverged = grid([("adam", 3e-3, 1e-4, 0.0, [1.0, None, 0.9])])  # a fallback pick, but no SGD against it
    part = c3(adam_diverged).parts[0]
    assert (part.reason, part.better, part.other) == ("the grid has no SGD", None, None)


def test_selected_csv_holds_the_fallback_pick_with_its_diverged_seeds():
    rows = selection.selected(evaluate(grid(ADAM + SGD)))
    sgd = rows[(rows["conclusion"] == "C3") & (rows["side"] == "other")].iloc[0]
    assert (sgd["optimizer"], sgd["lr"], sgd["grid_seeds"], sgd["grid_diverged"]) == ("sgd", "0.01", 3, 1)
    assert sgd["grid_mean"] == pytest.approx(1.6)


def test_the_fallback_pick_is_judged_on_fresh_seeds_and_loses_where_every_model_diverged():
    cells = grid(ADAM + SGD)
    result = {c.key: c for c in confirm(evaluate(cells), fresh([1.0] * 6, [None] * 6), M)}
    part = result["C3"].parts[0]
    assert part.verdict == CONFIRMED and part.fresh.method == SIGN_TEST and part.fresh.n_diverged == 6
    against = {c.key: c for c in confirm(evaluate(cells), fresh([None] * 6, [1.5] * 6), M)}
    assert against["C3"].verdict == REFUTED  # the side that always diverged loses, whichever it is
    finished = {c.key: c for c in confirm(evaluate(cells), fresh([1.0, 1.1, 0.9] * 2, [1.6, 1.5, 1.7] * 2), M)}
    assert finished["C3"].verdict == CONFIRMED and finished["C3"].parts[0].fresh.mean == pytest.approx(-0.6)


def test_the_reports_name_the_fallback_pick():
    cells = grid(ADAM + SGD)
    judged = confirm(evaluate(cells), fresh([1.0] * 6, [None] * 6), M)
    name = "best SGD (by the fallback, 1 of 3 grid seeds diverged)"
    assert FALLBACK in RULES and "the most grid seeds that finished" in FALLBACK
    section = confirmed_markdown(judged, 6, M, best_mse=1.0, variance=2.0)
    assert f"| {name}: SGD lr 0.01 wd 0, no SAM | 1.6000 (rel 0.800) |" in section
    assert verdict_cell(judged[2]).startswith("confirmed (sign test, 6 of 6 diverged: median Δ in [")
    assert verdict_cell(judged[2]).endswith(f"in [-inf, -inf]; {name})")  # no finished pair: no mean Δ
    assert winners_curse(judged).set_index("picked as").loc[f"C3: {name}", "grid_mean"] == pytest.approx(1.6)
    finished = confirm(evaluate(cells), fresh([1.0] * 6, [1.7] * 6), M)
    line = curse_line("main", finished, 6)
    assert "picks (1 by the fallback: grid mean over its finished seeds only) on 6 fresh seeds" in line
    summary = "\n".join(confirmed.matrix({"main": (cells, None, fresh([1.0] * 6, [None] * 6), M, "main")}))
    assert FALLBACK in summary and name in summary
    selection_table = conclusions_markdown(evaluate(cells))
    assert f"{name}: 1.6000, rel 0.800 (SGD lr 0.01 wd 0, no SAM)" in selection_table
    plain = grid(ADAM + SGD + [ALL_FINISHED])
    no_fallback = "\n".join(confirmed.matrix({"main": (plain, None, fresh([1.0] * 6, [1.5] * 6), M, "main")}))
    assert FALLBACK not in no_fallback and "by the fallback" not in no_fallback
