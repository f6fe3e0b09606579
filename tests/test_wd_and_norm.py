"""The wd_and_norm section on synthetic cells whose answers are known by construction, and flip."""

import itertools

import numpy as np
import pandas as pd
import pytest

from genboost.analysis import wd_and_norm
from genboost.compare import summary

LRS, WDS, SEEDS = [1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2], [0.0, 1e-4, 1e-3, 1e-2], [0, 1, 2]


def synthetic(helps: bool, experiment="wd_and_norm") -> pd.DataFrame:
    """helps: with norm=layer, weight decay lowers test MSE, shrinks ||W|| (raising the effective lr) and moves
    the best lr from 1e-2 down to 1e-3; without a norm it raises test MSE and leaves the best lr. Not helps: with
    norm=layer every one of these is reversed."""
    rng = np.random.default_rng(0)
    offset = rng.normal(0, 0.05, len(SEEDS))
    rows = []
    for norm, opt, lr, wd, s in itertools.product(["none", "layer"], ["sgd", "adam"], LRS, WDS, SEEDS):
        k = WDS.index(wd)  # 0..3
        sign = 1 if helps else -1
        normed = norm == "layer"
        best = (1e-3 if sign > 0 else 3e-2) if normed and wd > 0 else 1e-2
        effect = -sign * 0.05 * k if normed else 0.05 * k
        mse = 0.5 + 0.1 * (np.log10(lr) - np.log10(best)) ** 2 + effect + offset[s] + rng.normal(0, 0.002)
        w_norm = 2.0 * (1 + k) ** (-sign) * (1 + rng.normal(0, 0.01)) if normed else None
        rows.append(dict(
            experiment=experiment, optimizer=opt, lr=lr, wd=wd, rho=0.0, seed=s, norm=norm, epochs=200,
            test_mse=mse, train_mse=0.3, diverged=False, shuffle_labels=False, weight_norm_l1=w_norm or 3.0,
            eff_lr_l1=lr / w_norm**2 if normed else np.nan,
        ))  # fmt: skip
    return pd.DataFrame(rows)


def scope(text: str, title: str) -> str:
    return text.split(f"#### {title}\n")[1].split("####")[0]


@pytest.fixture(scope="module")
def helps_section() -> str:
    """The section of `synthetic(helps=True)` (no flatness measured), written once for the tests that read it."""
    return "\n".join(wd_and_norm.section("wd_and_norm", synthetic(helps=True)))


def test_weight_decay_helps_through_the_effective_lr_when_the_numbers_say_so(helps_section):
    text = helps_section
    layer = scope(text, "norm=layer, SGD")
    assert "- Test MSE, wd=0.001 vs wd=0: lowered (mean -0.1" in layer
    assert "- Effective lr of hidden layer 1, wd=0.01 vs wd=0: raised (" in layer
    assert "- Best lr at wd=0.01: 0.001, at wd=0: 0.01: smaller" in layer
    assert (
        "**Verdict (norm=layer, SGD): weight decay lowered test MSE at 3 of 3 wds (raised at 0 of 3); raised the "
        "effective lr at 3 of 3 wd x layer pairs; the best lr was smaller with weight decay at 3 of 3 wds.**"
    ) in layer
    plain = scope(text, "norm=none, Adam")
    assert "Effective lr" not in plain  # no norm: no scale-invariant layer
    assert "weight decay lowered test MSE at 0 of 3 wds (raised at 3 of 3)" in plain
    assert "the best lr was smaller with weight decay at 0 of 3 wds" in plain and ": the same" in plain


def test_the_verdicts_flip_with_the_numbers():
    layer = scope("\n".join(wd_and_norm.section("wd_and_norm", synthetic(helps=False))), "norm=layer, Adam")
    assert "- Test MSE, wd=0.01 vs wd=0: raised (" in layer
    assert "- Effective lr of hidden layer 1, wd=0.0001 vs wd=0: lowered (" in layer
    assert "- Best lr at wd=0.001: 0.03, at wd=0: 0.01: larger" in layer
    assert "weight decay lowered test MSE at 0 of 3 wds (raised at 3 of 3); raised the effective lr at 0 of 3" in layer


def test_noise_is_within_noise_and_diverged_models_are_left_out():
    cells = synthetic(helps=True)
    rng = np.random.default_rng(1)
    layer = cells["norm"] == "layer"
    cells.loc[layer, "test_mse"] = 0.5 + rng.normal(0, 0.05, layer.sum())
    cells.loc[layer, "eff_lr_l1"] = cells.loc[layer, "lr"] * np.exp(rng.normal(0, 0.05, layer.sum()))
    cells.loc[layer & (cells["wd"] == 0.01) & (cells["lr"] == 3e-2), "diverged"] = True
    text = scope("\n".join(wd_and_norm.section("wd_and_norm", cells)), "norm=layer, SGD")
    assert "- Effective lr of hidden layer 1, wd=0.001 vs wd=0: within noise (" in text
    assert "wd=0.01 vs wd=0: within noise (" in text and "n = 15" in text  # 18 pairs, 3 with a diverged side


def test_no_section_without_a_norm_sweep_and_the_summary_shows_it_with_one():
    assert wd_and_norm.section("main", synthetic(helps=True).query("norm == 'layer'")) == []
    text = summary.summarize(pd.concat([synthetic(True, "main").query("norm == 'none'"), synthetic(True)]),
                             ["main", "wd_and_norm"], baseline="main")  # fmt: skip
    assert "## wd_and_norm: does weight decay still help with LayerNorm" in text
    assert "## main: does weight decay" not in text


def test_flatness_moves_with_decay_per_norm_and_is_left_out_when_not_measured(helps_section):
    cells = synthetic(helps=True)
    rng = np.random.default_rng(2)
    k = cells["wd"].map(WDS.index)
    normed = cells["norm"] == "layer"
    # with the norm decay flattens (the top eigenvalue falls with wd), without it it sharpens
    cells["hessian_top_eig"] = 50 * (1 + np.where(normed, -0.2, 0.2) * k) + rng.normal(0, 0.5, len(cells))
    cells["pacbayes_flatness"] = np.nan  # turned off: no line for it
    text = "\n".join(wd_and_norm.section("wd_and_norm", cells))
    layer, plain = scope(text, "norm=layer, SGD"), scope(text, "norm=none, Adam")
    assert "- Flatness (top Hessian eigenvalue), wd=0.01 vs wd=0: flatter (mean -29.9" in layer
    assert "- Flatness (top Hessian eigenvalue), wd=0.0001 vs wd=0: sharper (" in plain
    assert "PAC-Bayes" not in text
    assert "made the models flatter at 3 of 3 wd x measure pairs (sharper at 0 of 3).**" in layer
    assert "made the models flatter at 0 of 3 wd x measure pairs (sharper at 3 of 3).**" in plain
    unmeasured = helps_section
    assert "- Flatness: no flatness measure was computed (the study's `analysis` turned them off)" in unmeasured
    assert "flatter at" not in unmeasured
