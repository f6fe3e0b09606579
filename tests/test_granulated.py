"""The granulated Kendall coefficient on a hand-built grid whose psi per axis is worked out by hand; the figure."""

import itertools
import math

import numpy as np
import pandas as pd
import pytest
import scipy.stats
from matplotlib.colors import LogNorm

from genboost.analysis.granulated import (
    PSI_ROW,
    fixed_coordinates,
    generalization_markdown,
    granulated_kendall,
    kendall,
    lr_flag,
)
from genboost.analysis.measures_figure import measures_against_test_mse

LRS, WDS, SEEDS = (1e-3, 1e-2, 1e-1), (0.0, 1e-3), (0, 1)
# lr_only follows the lr, plus a small jitter that agrees with test MSE across wd for seed 0 and disagrees for
# seed 1 (test MSE rises with wd in both).
JITTER = {(0, 0): 0.0, (1, 0): 0.01, (0, 1): 0.01, (1, 1): 0.0}  # (wd index, seed) -> jitter


def grid() -> pd.DataFrame:
    rows = []
    for (i, lr), (j, wd), seed in itertools.product(enumerate(LRS), enumerate(WDS), SEEDS):
        test = i + 0.5 * j + 0.1 * seed
        rows.append(dict(experiment="main", optimizer="sgd", lr=lr, wd=wd, rho=0.0, seed=seed, test_mse=test,
                         train_mse=test - 0.2 * (i + 1), diverged=False, lr_only=i + JITTER[j, seed],
                         tracker=test, lr_step=float(i)))  # fmt: skip
    return pd.DataFrame(rows)


def psi(table: pd.DataFrame) -> dict[str, tuple[float, int]]:
    """axis -> (psi to 12 places, groups): a tau of 1 comes out as 1 - 2e-16."""
    return {r.axis: (round(r.psi, 12), r.n_groups) for r in table.itertuples()}


def test_a_measure_that_follows_lr_only():
    # lr axis: 4 groups (wd, seed) of 3 models; measure and test MSE both rise with lr: tau = 1 in each.
    # wd axis: 6 groups (lr, seed) of 2 models: tau = +1 for seed 0 (both rise), -1 for seed 1: psi = 0.
    out = psi(granulated_kendall(grid(), "lr_only", "test_mse", ["lr", "wd"]))
    assert out == {"lr": (1.0, 4), "wd": (0.0, 6), PSI_ROW: (0.5, 10)}


def test_the_lr_flag_by_hand():
    # Over all 66 pairs: the 48 pairs across lrs are concordant; within each lr (6 pairs) 2 concordant, 2
    # discordant, 2 tied in the measure (same jitter). tau-b = (54 - 6) / sqrt((66 - 6) * 66).
    # Within one lr the 4 models give tau = 0: the whole correlation comes through the lr.
    flag = lr_flag(grid(), "lr_only", "test_mse")
    assert flag["tau"] == pytest.approx(48 / math.sqrt(60 * 66))
    assert (flag["within_lr"], flag["n_lr_groups"], flag["n"], flag["flagged"]) == (0.0, 3, 12, True)
    tracker = lr_flag(grid(), "tracker", "test_mse")
    assert tracker["tau"] == pytest.approx(1.0) and tracker["within_lr"] == pytest.approx(1.0)
    assert not tracker["flagged"]


def test_left_out_models_and_skipped_groups():
    cells = grid()
    cells.loc[(cells.lr == 1e-3) & (cells.wd == 0.0) & (cells.seed == 0), "lr_only"] = math.nan
    cells.loc[(cells.lr == 1e-1) & (cells.wd == 1e-3) & (cells.seed == 1), "diverged"] = True
    # lr groups keep 2 models each where one is gone (tau still 1); the two wd groups left with one model are
    # skipped: of the other four, two give +1 (seed 0) and two -1 (seed 1).
    out = psi(granulated_kendall(cells, "lr_only", "test_mse", ["lr", "wd"]))
    assert out == {"lr": (1.0, 4), "wd": (0.0, 4), PSI_ROW: (0.5, 8)}


def test_constant_groups_are_not_counted_and_psi_averages_the_axes_that_have_groups():
    # lr_step is constant within every wd group: no wd group counts, Psi is psi of lr alone.
    out = psi(granulated_kendall(grid(), "lr_step", "test_mse", ["lr", "wd"]))
    assert out["wd"][1] == 0 and math.isnan(out["wd"][0])
    assert out["lr"] == (1.0, 4) and out[PSI_ROW] == (1.0, 4)


def test_groups_hold_the_optimizer_fixed():
    # A second optimizer with a reversed measure: mixed into the groups it would cancel the first one's tau.
    sgd = grid()
    adam = sgd.assign(optimizer="adam", lr_only=-sgd["lr_only"])
    out = psi(granulated_kendall(pd.concat([sgd, adam]), "lr_only", "test_mse", ["lr", "wd"]))
    assert out == {"lr": (0.0, 8), "wd": (0.0, 12), PSI_ROW: (0.0, 20)}
    assert psi(granulated_kendall(pd.concat([sgd, adam]), "tracker", "test_mse", ["lr", "wd"]))["lr"] == (1.0, 8)


def test_markdown_ranks_and_flags_the_measures():
    cells = grid()
    md = generalization_markdown(cells, ["lr_only", "tracker"], ["lr", "wd"])
    test_part = md.split("### test MSE")[1].split("### generalization gap")[0]
    (row,) = [line for line in test_part.splitlines() if line.startswith("| lr_only ")]
    assert [c.strip() for c in row.strip("|").split("|")] == [
        "lr_only", "+0.763 (n=12)", "0.000 (3)", "+1.000 (4)", "+0.000 (6)", "+0.500"
    ]  # fmt: skip
    assert "Ranking by Psi: 1. tracker (Psi +1.000); 2. lr_only (Psi +0.500)" in test_part
    assert "- Flag: lr_only" in test_part and "- Flag: tracker" not in test_part
    assert "### generalization gap (test MSE - train MSE)" in md  # the gap is computed from train_mse


def test_bad_input_fails_at_once():
    with pytest.raises(ValueError, match="no column 'nope'"):
        granulated_kendall(grid(), "nope", "test_mse", ["lr"])
    with pytest.raises(ValueError, match=r"missing \['momentum'\]"):
        granulated_kendall(grid(), "lr_only", "test_mse", ["momentum"])


def test_figure_one_panel_per_measure_colored_by_lr(tmp_path):
    cells = grid()
    cells.loc[0, "diverged"] = True
    fig = measures_against_test_mse(cells, ["lr_only", "tracker"], tmp_path / "m.png", tmp_path / "m.pdf")
    assert (tmp_path / "m.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (tmp_path / "m.pdf").read_bytes()[:5] == b"%PDF-"
    panels = [ax for ax in fig.axes if any(c.get_gid() == "models" for c in ax.collections)]
    assert [ax.get_xlabel() for ax in panels] == ["lr_only", "tracker"]
    for ax in panels:
        (points,) = ax.collections  # one optimizer: one set of points
        assert len(points.get_offsets()) == 11  # the diverged model is left out
        assert isinstance(points.norm, LogNorm) and (points.norm.vmin, points.norm.vmax) == (1e-3, 1e-1)


def test_kendall_equals_scipys_tau_b_with_and_without_ties():
    rng = np.random.default_rng(3)
    for n in (2, 3, 7, 40):
        a, b = rng.normal(size=n), rng.normal(size=n)
        ties_a, ties_b = np.round(a), np.round(b * 2) / 2
        for x, y in ((a, b), (ties_a, b), (a, ties_b), (ties_a, ties_b)):
            if len(set(x)) > 1 and len(set(y)) > 1:
                assert kendall(x, y) == pytest.approx(scipy.stats.kendalltau(x, y).statistic, abs=1e-12)
    assert math.isnan(kendall([1.0, 1.0], [1.0, 2.0])) and math.isnan(kendall([1.0], [2.0]))


def test_a_swept_setting_is_held_fixed_in_groups_or_is_an_axis():
    """Two batch sizes of each model: a group of lr never mixes them, and batch_size can be an axis itself."""
    small = grid().assign(batch_size=16)
    cells = pd.concat([small, small.assign(batch_size=64, lr_only=small["lr_only"] + 100)], ignore_index=True)
    assert "batch_size" in fixed_coordinates(cells, ["lr", "wd"])
    both, one = (psi(granulated_kendall(c, "lr_only", "test_mse", ["lr", "wd"])) for c in (cells, small))
    assert both == {axis: (value, 2 * groups) for axis, (value, groups) in one.items()}  # each batch size apart
    assert "batch_size" not in fixed_coordinates(cells, ["lr", "batch_size"])
