"""Does weight decay still help with LayerNorm, and does it act through the effective learning rate?

A hidden linear layer followed by a LayerNorm is scale-invariant in its weights W: the model's output does not
change when W is scaled, so weight decay cannot act by making the function simpler. What it does change is
W's norm, and with it the effective step lr / ||W||^2 of the layer's direction (van Laarhoven 2017,
arXiv 1706.05350; Zhang et al., ICLR 2019, arXiv 1810.12281): decay keeps ||W|| small and the effective lr
large. If that is how it acts, then with a norm (1) weight decay may still lower test MSE, (2) it raises the
effective lr, and (3) the best lr with decay is smaller than without, since decay already enlarges the step.

For each experiment that sweeps `norm`, this section answers the three on the numbers, per norm level and
optimizer: (1) the paired comparisons of each wd against wd=0 on test MSE (`genboost.analysis.stats.paired`,
paired by lr, rho and seed); (2) the same pairs' log ratio of each hidden layer's final effective lr
(`eff_lr_l<l>` of cells.csv, recorded while training), tested with `stats.paired_tests`; (3) the lr of the lowest
mean test MSE at each wd against that at wd=0. An effect counts when both the t-test and the Wilcoxon test reject
at alpha. Verdicts are worded from the signs and p-values, never typed in. (Adam's step does not scale with the
gradient, so its direction moves by about lr / ||W|| rather than lr / ||W||^2; at a fixed lr both fall as ||W||
grows, so the paired verdict, raised or lowered, is the same for either.)

It also reports how flatness moves with decay, with and without the norm: for each flatness measure the study
computed (the registry's "sharper" measures: SAM-ascent sharpness, the top Hessian eigenvalue, the PAC-Bayes
1/sigma^2; none when `analysis` turns them off), the same pairs' difference of the measure, each wd against wd=0.
A normed model's flatness is of its whole function, the norm's gains and biases among the parameters perturbed.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from genboost.analysis.formats import number
from genboost.analysis.stats import cell_stats, effect_verdict, is_diverged, min_pairs, paired, paired_tests, sweep_axes
from genboost.config.cell import AXES
from genboost.config.optimizers import label
from genboost.config.study import fmt_number
from genboost.measures import registry

EFF_LR = "eff_lr_l"  # the registry's per-layer effective-lr measure: eff_lr_l1, eff_lr_l2, ...
PAIR_KEYS = ["experiment", *(a for a in AXES if a != "wd")]  # a model but for its weight decay


def eff_lr_columns(cells: pd.DataFrame) -> list[str]:
    """The effective-lr columns of cells.csv with any value, by layer."""
    found = [c for c in cells.columns if (m := registry.measure_of(c)) is not None and m.column == EFF_LR]
    return registry.ordered(c for c in found if cells[c].notna().any())


def _p(p: float) -> str:
    return "p < 0.0001" if p < 1e-4 else f"p = {number(p)}"


def _test_text(r) -> str:
    ci = f"[95% CI {number(r['ci_low'], '+.4g')}, {number(r['ci_high'], '+.4g')}]"
    tests = f"t-test {_p(r['p_t'])}, Wilcoxon {_p(r['p_wilcoxon'])}"
    return f"mean {number(r['mean_diff'], '+.4g')} {ci}, n = {r['n_pairs']}, {tests}"


def test_mse_lines(cells: pd.DataFrame, alpha: float) -> tuple[list[str], list[str]]:
    """(lines, each wd's verdict word) of each wd against wd=0 on test MSE, over all lrs."""
    comps = paired(cells, "wd")
    comps = comps[(comps["lrs"] == "all") & (comps["optimizer"] == "all")]
    lines, words = [], []
    for r in comps.to_dict("records"):
        said = effect_verdict(r, alpha)
        word = {"supported: lowers test MSE": "lowered", "supported: raises test MSE": "raised"}.get(said, said)
        words.append(word)
        lines.append(f"- Test MSE, {r['comparison']}: {word} ({_test_text(r)}, difference in MSE)")
    return lines, words


def wd_pairs(cells: pd.DataFrame, column: str, wd: float) -> tuple[np.ndarray, np.ndarray]:
    """`column` at wd and at wd=0 of each pair of models alike but for wd, neither diverged nor without a value."""
    ok = cells[~is_diverged(cells) & cells[column].notna()]
    m = ok[ok["wd"] == wd].merge(ok[ok["wd"] == 0], on=PAIR_KEYS, suffixes=("_t", "_c"))
    return m[f"{column}_t"].to_numpy(dtype=float), m[f"{column}_c"].to_numpy(dtype=float)


def eff_lr_pairs(cells: pd.DataFrame, column: str, wd: float) -> np.ndarray:
    """log(eff lr at wd / eff lr at wd=0) of each pair of models alike but for wd, neither diverged."""
    treat, control = wd_pairs(cells[cells[column].isna() | (cells[column] > 0)], column, wd)
    return np.log(treat / control)


def flatness_columns(cells: pd.DataFrame) -> list[str]:
    """The flatness measures of cells.csv with any value (the registry's "sharper" ones), in its order."""
    sharper = [c for c in cells.columns if (m := registry.measure_of(c)) is not None and m.higher == "sharper"]
    return registry.ordered(c for c in sharper if cells[c].notna().any())


def flatness_lines(cells: pd.DataFrame, alpha: float) -> tuple[list[str], list[str]]:
    """(lines, each wd x measure's word: sharper | flatter | within noise | not testable) of each flatness measure,
    each wd against wd=0 (the paired difference of the measure; higher is sharper)."""
    columns = flatness_columns(cells)
    if not columns:
        return ["- Flatness: no flatness measure was computed (the study's `analysis` turned them off)"], []
    return _per_wd_lines(
        cells, columns, alpha, ("sharper", "flatter"), "difference",
        subject=lambda column: f"Flatness ({registry.label(column)})",
        differences=lambda column, wd: np.subtract(*wd_pairs(cells, column, wd)),
    )  # fmt: skip


def eff_lr_lines(cells: pd.DataFrame, alpha: float) -> tuple[list[str], list[str]]:
    """(lines, each wd x layer's word: raised | lowered | within noise | not testable) of the effective lr."""
    return _per_wd_lines(
        cells, eff_lr_columns(cells), alpha, ("raised", "lowered"), "log ratio",
        subject=lambda column: f"Effective lr of hidden layer {column[len(EFF_LR) :]}",
        differences=lambda column, wd: eff_lr_pairs(cells, column, wd),
    )  # fmt: skip


def _per_wd_lines(cells, columns, alpha: float, up_down: tuple[str, str], unit: str, subject, differences):
    """(lines, words) of each column and wd > 0 against wd=0: the paired tests of `differences(column, wd)` (in
    `unit`), worded up / down / within noise / not testable; `subject(column)` heads the line."""
    lines, words = [], []
    for column in columns:
        for wd in sorted(w for w in cells["wd"].unique() if w > 0):
            r = paired_tests(differences(column, wd))
            word = _direction(r, alpha, *up_down)
            words.append(word)
            text = "no pairs" if r["n_pairs"] == 0 else f"{_test_text(r)}, {unit}"
            lines.append(f"- {subject(column)}, wd={fmt_number(wd)} vs wd=0: {word} ({text})")
    return lines, words


def _direction(r: dict, alpha: float, up: str, down: str) -> str:
    if r["n_pairs"] < min_pairs(alpha) or math.isnan(r["p_t"]) or math.isnan(r["p_wilcoxon"]):
        return "not testable"
    if r["p_t"] < alpha and r["p_wilcoxon"] < alpha:
        return up if r["mean_diff"] > 0 else down
    return "within noise"


def best_lr_lines(cells: pd.DataFrame) -> tuple[list[str], list[str]]:
    """(lines, each wd's word: smaller | larger | the same | no best) of the best lr at each wd against wd=0's."""
    means = cell_stats(cells, intervals=False).dropna(subset=["mean"])
    best = {wd: float(g.loc[g["mean"].idxmin(), "lr"]) for wd, g in means.groupby("wd")}
    if 0.0 not in best:
        return ["- Best lr: every configuration with wd=0 diverged; nothing to compare"], []
    lines, words = [], []
    for wd in sorted(w for w in cells["wd"].unique() if w > 0):
        if wd not in best:
            word = "no best"
        else:
            word = "smaller" if best[wd] < best[0.0] else "larger" if best[wd] > best[0.0] else "the same"
        words.append(word)
        at = fmt_number(best[wd]) if wd in best else "none (all diverged)"
        lines.append(f"- Best lr at wd={fmt_number(wd)}: {at}, at wd=0: {fmt_number(best[0.0])}: {word}")
    return lines, words


def _count(words: list[str], word: str) -> str:
    return f"{sum(w == word for w in words)} of {len(words)}"


def scope_lines(title: str, cells: pd.DataFrame, alpha: float) -> list[str]:
    """The lines and verdict of one norm level and optimizer."""
    mse, mse_words = test_mse_lines(cells, alpha)
    eff, eff_words = eff_lr_lines(cells, alpha)
    lr, lr_words = best_lr_lines(cells)
    flat, flat_words = flatness_lines(cells, alpha)
    verdict = [f"weight decay lowered test MSE at {_count(mse_words, 'lowered')} wds (raised at "
               f"{_count(mse_words, 'raised')})"]  # fmt: skip
    if eff_words:
        verdict.append(f"raised the effective lr at {_count(eff_words, 'raised')} wd x layer pairs")
    verdict.append(f"the best lr was smaller with weight decay at {_count(lr_words, 'smaller')} wds")
    if flat_words:
        verdict.append(f"made the models flatter at {_count(flat_words, 'flatter')} wd x measure pairs (sharper at "
                       f"{_count(flat_words, 'sharper')})")  # fmt: skip
    lines = [*mse, *eff, *lr, *flat]
    return [f"#### {title}", "", *lines, f"- **Verdict ({title}): {'; '.join(verdict)}.**", ""]


def section(name: str, cells: pd.DataFrame, alpha: float = 0.05) -> list[str]:
    """The summary's section for one experiment, [] unless it sweeps norm (one experiment's cells)."""
    if "norm" not in sweep_axes(cells):
        return []
    lines = [
        f"## {name}: does weight decay still help with LayerNorm, and does it act through the effective lr?",
        "",
        "Per norm and optimizer, each wd against wd=0, paired by lr, rho and seed; p < "
        f"{alpha} in both the t-test and the Wilcoxon test counts. The effective lr is lr / ||W||^2 of each hidden "
        "layer followed by a norm, at the end of training (none without a norm); the best lr is that of the lowest "
        "mean test MSE over seeds; flatness compares each flatness measure (higher is sharper) of the same pairs.",
        "",
    ]
    for norm in sorted(cells["norm"].unique()):
        for optimizer in sorted(cells["optimizer"].unique()):
            sub = cells[(cells["norm"] == norm) & (cells["optimizer"] == optimizer)]
            lines += scope_lines(f"norm={norm}, {label(optimizer)}", sub, alpha)
    return lines
