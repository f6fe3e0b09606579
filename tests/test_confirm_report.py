"""The talk's conclusions on fresh seeds (genboost.compare.confirm_report): the grid's picks paired on fresh cells,
the weakest part deciding a conclusion, the winner's curse, and how the reports print them."""

import math
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from compare_helpers import base_mse, cells_frame

from genboost.compare.conclusions import NOT_TESTABLE, evaluate
from genboost.compare.confirm import CONFIRMED, EQUIVALENT, PAIRS
from genboost.compare.confirm_report import (
    confirm,
    confirmed_markdown,
    curse_line,
    pairs,
    verdict_cell,
    winners_curse,
)

M = 0.04
FRESH = 4  # fresh draws of the fixture's three seeds: 12 fresh seeds
BEST = dict(experiment="main", optimizer="adam", lr=3e-3, wd=1e-4, rho=0.0)  # the fixture's best
NO_WD = {**BEST, "wd": 0.0}


def fresh_cells(base=base_mse, experiment="main", **kw) -> pd.DataFrame:
    """FRESH draws of the fixture's cells with more seed noise (of mean 0 in each configuration, so that its
    fresh mean is known), their seeds renumbered from 1000 (the grid's are 0-2)."""
    draws = [cells_frame(experiment, base=base, noise_seed=10 + k, **kw) for k in range(FRESH)]
    out = pd.concat([d.assign(seed=d["seed"] + 1000 + 3 * k) for k, d in enumerate(draws)], ignore_index=True)
    noise = pd.Series(np.random.default_rng(0).normal(0, 0.02, len(out)))
    noise -= noise.groupby([out[c] for c in ("optimizer", "lr", "wd", "rho")]).transform("mean")
    return out.assign(test_mse=out["test_mse"] + noise)


def flattered(opt, rho, lr, wd) -> float:
    """On fresh seeds the grid's best is 0.05 worse and its twin without weight decay 0.05 better: weight decay's
    0.1 lead on the grid was half luck each way."""
    best = base_mse(opt, rho, lr, wd)
    return best + {1e-4: 0.05, 0.0: -0.05}[wd] if (opt, rho, lr) == ("adam", 0.0, 3e-3) else best


def config(**kw) -> pd.Series:
    return pd.Series(kw)


def test_pairs_match_each_configuration_by_seed_and_read_divergence():
    cells = fresh_cells()
    cells.loc[(cells["seed"] == 1001) & (cells["wd"] == 0.0) & (cells["lr"] == 3e-3), "test_mse"] = math.nan
    cells = cells[~((cells["seed"] == 1002) & (cells["wd"] == 1e-4))]  # a seed only one side has: no pair
    frame = pairs(cells, config(**BEST), config(**NO_WD, mean=1.1))
    assert list(frame.columns) == list(PAIRS)
    assert list(frame["seed"]) == [s for s in range(1000, 1000 + 3 * FRESH) if s != 1002]
    assert frame["other_diverged"].sum() == 1 and bool(frame.loc[frame["seed"] == 1001, "other_diverged"].iloc[0])
    assert not frame["better_diverged"].any()
    finished = frame[~frame["other_diverged"]]
    assert (finished["other_mse"] - finished["better_mse"]).mean() == pytest.approx(0.1, abs=0.02)


def test_a_setting_neither_experiment_sweeps_matches():
    cells = fresh_cells().assign(batch_size=math.nan)
    assert len(pairs(cells, config(**BEST, batch_size=math.nan), config(**NO_WD))) == 3 * FRESH


def test_the_grid_picks_confirmed_and_a_two_part_conclusion_takes_its_weakest():
    grid = evaluate(cells_frame(), cells_frame("second_chance", opts=["adam"], rhos=[0.02], noise_seed=1))
    fresh = pd.concat([fresh_cells(flattered), fresh_cells(experiment="second_chance", opts=["adam"], rhos=[0.02])])
    result = {c.key: c for c in confirm(grid, fresh, M)}
    c1 = result["C1"]
    assert [p.verdict for p in c1.parts] == [CONFIRMED, EQUIVALENT]  # wd's 0.1 gain was the grid's luck
    assert c1.verdict == EQUIVALENT
    assert {k: c.verdict for k, c in result.items() if k != "C1"} == dict(C2=CONFIRMED, C3=CONFIRMED, C4=CONFIRMED)
    part = c1.parts[1]
    assert part.better["mean"] == pytest.approx(1.0, abs=0.01)  # its grid mean, beside
    assert part.fresh.better_mean == pytest.approx(1.05, abs=0.01)  # its fresh one
    assert part.fresh.n == 3 * FRESH


def test_winners_curse_shows_how_far_each_pick_was_flattered():
    grid = evaluate(cells_frame())
    curse = winners_curse(confirm(grid, fresh_cells(flattered), M))
    assert curse["configuration"].is_unique  # a configuration several parts pick is listed once
    flattered_row = curse.loc[curse["optimism"].idxmax()]
    assert flattered_row["configuration"] == "main: Adam lr 0.003 wd 0.0001, no SAM"
    assert flattered_row["optimism"] == pytest.approx(0.05, abs=0.01)
    assert flattered_row["fresh_mean"] - flattered_row["grid_mean"] == flattered_row["optimism"]
    assert curse["optimism"].min() == pytest.approx(-0.05, abs=0.01)  # the twin without weight decay
    assert len(curse) == 5 and np.sort(np.abs(curse["optimism"]))[:3] == pytest.approx(0, abs=0.01)


@pytest.fixture
def confirmed():
    return confirm(evaluate(cells_frame()), fresh_cells(flattered), M)


def test_the_vs_talk_section_gives_every_part_its_numbers(confirmed):
    text = confirmed_markdown(confirmed, 3 * FRESH, M, best_mse=1.0, variance=2.0)
    assert text.startswith("## Confirmed on 12 fresh seeds\n")
    assert "Margin m = 0.0400 (4.0% of the best test MSE)." in text
    assert "- **C1** Adam with lr 3e-3 works best, and weight decay improves it: **equivalent**" in text
    assert "- **C4** a second chance for SAM (rho 0.02, 200 epochs) does not beat plain Adam: **not testable**" in text
    rows = [line for line in text.splitlines() if line.startswith("| C")]
    assert len(rows) == 5  # C1's two parts, C2, C3, C4
    wd = [cell.strip() for cell in next(r for r in rows if "weight decay improves" in r).split("|")[1:-1]]
    assert wd[2:8] == ["best wd > 0: Adam lr 0.003 wd 0.0001, no SAM", "1.0030 (rel 0.501)", "1.0540 (rel 0.527)",
                       "wd = 0: Adam lr 0.003 wd 0, no SAM", "1.1056 (rel 0.553)", "1.0537 (rel 0.527)"]  # fmt: skip
    assert wd[8] == "+0.0003" and wd[10].startswith("paired t p ") and wd[11:] == ["0.0400 (4.0%)", "equivalent", "–"]
    c4 = [cell.strip() for cell in rows[-1].split("|")[1:-1]]
    assert c4[2:11] == ["–"] * 9 and c4[12:] == ["not testable", "–"]


def test_the_matrix_cell_names_the_deciding_part(confirmed):
    cells = {c.key: verdict_cell(c) for c in confirmed}
    reason = confirmed[3].parts[0].reason  # no second chance: the grid's reason, named in the matrix too
    assert reason and cells["C4"] == f"{NOT_TESTABLE}: {reason}"
    assert cells["C1"].startswith("equivalent (Δ ")  # the weight-decay part's, not Adam's confirmed lead
    assert cells["C1"] == verdict_cell(replace(confirmed[0], parts=confirmed[0].parts[1:]))
    assert cells["C3"].startswith("confirmed (Δ -0.4")


def test_a_diverged_pick_reads_as_a_sign_test_in_the_matrix():
    fresh = fresh_cells()
    sgd = fresh["optimizer"] == "sgd"
    fresh.loc[sgd & (fresh["seed"] < 1003), "diverged"] = True
    c3 = next(c for c in confirm(evaluate(cells_frame()), fresh, M) if c.key == "C3")
    cell = verdict_cell(c3)
    assert cell.startswith("confirmed (sign test, 3 of 12 diverged: median Δ in [")
    assert "; mean Δ of the finished pairs -0.5" in cell


def test_the_curse_line(confirmed):
    line = curse_line("main", confirmed, 3 * FRESH)
    assert line.startswith("- main: the grid's 5 picks on 12 fresh seeds: fresh mean - grid mean ")
    assert "on average, at most +0.05" in line and "(C1: best Adam lr 3e-3)" in line
    empty = confirm(evaluate(None), fresh_cells(), M)
    assert curse_line("main", empty, 12) == "- main: no pick to check on fresh seeds"
