"""Do smaller batches and larger steps find flatter minima here, and do those generalize better?

The implicit-bias reading of SGD's noise (Keskar et al., ICLR 2017, arXiv 1609.04836; Jiang et al., ICLR 2020,
arXiv 1912.02178) says both: more gradient noise (a smaller batch, a larger lr) drives training to flatter
minima, and flatter minima generalize better. For each experiment that sweeps `batch_size`, this section
tests it on the numbers: Kendall's tau of batch size and of lr with each flatness measure of cells.csv,
within each optimizer (their measures live on different scales) and over all models; the paired comparison
of the smallest against the largest batch on test MSE (`genboost.analysis.stats.paired`); and Kendall's tau of each
measure with test MSE. Every measure reads higher = sharper (weight_norm and dist_from_init: a larger model,
a more complex one by Jiang et al.'s reading). Verdicts are worded from the signs and p-values, never typed in.
"""

from __future__ import annotations

import math

import pandas as pd

from genboost.analysis.formats import number
from genboost.analysis.stats import NO_PAIRS, effect_verdict, paired, rank_correlations, sweep_axes
from genboost.analysis.tables import measure_columns
from genboost.config.study import fmt_value

# The sign of Kendall's tau with a measure when more gradient noise goes with a lower (flatter) one: a
# smaller batch is more noise, so tau(batch_size, measure) > 0; a larger lr is more noise, so tau < 0.
NOISIER = {"batch_size": ("smaller batches", +1), "lr": ("larger steps (lr)", -1)}


def direction(variable: str, tau: float, p: float, alpha: float) -> str | None:
    """'flatter' or 'sharper' (the minima of the noisier side), None when the tau is not significant."""
    if math.isnan(p) or p >= alpha:
        return None
    return "flatter" if tau * NOISIER[variable][1] > 0 else "sharper"


def _tau(r) -> str:
    return f"tau = {number(r.tau, '+.3f')}, {_p(r.p)}, n = {r.n}"


def _p(p: float) -> str:
    return "p < 0.0001" if p < 1e-4 else f"p = {number(p)}"  # NaN: "p = –"


def flatness_line(variable: str, corr: pd.DataFrame, alpha: float) -> tuple[str, dict]:
    """One line for one optimizer scope: by which measures the noisier side was flatter, sharper, neither;
    and the measures of each ("flatter", "sharper", None)."""
    said: dict = {"flatter": [], "sharper": [], None: []}
    for r in corr.itertuples():  # r.measure is the setting, r.target the flatness measure
        said[direction(variable, r.tau, r.p, alpha)].append(f"{r.target} ({_tau(r)})")
    parts = [f"gave {d} minima by {', '.join(said[d])}" for d in ("flatter", "sharper") if said[d]]
    if said[None]:
        parts.append(f"no significant relation with {', '.join(said[None])}")
    return f"{NOISIER[variable][0].capitalize()} " + "; ".join(parts), said


def generalization_line(comparison: pd.Series | None, alpha: float) -> tuple[str, str]:
    """(the line, its word: better | worse | within noise | not testable | nothing to compare) of the smallest
    batch against the largest on test MSE."""
    if comparison is None:
        return "Test MSE: nothing to compare (no two batch sizes with the same other settings and seed)", NO_PAIRS
    said = effect_verdict(comparison, alpha)
    word = {"supported: lowers test MSE": "better", "supported: raises test MSE": "worse"}.get(said, said)
    if said == NO_PAIRS:
        return f"Test MSE, {comparison['comparison']}: {NO_PAIRS} (every pair has a diverged side)", word
    sentence = {
        "better": "smaller batches generalized better",
        "worse": "smaller batches generalized worse",
        "within noise": "no evidence that smaller batches generalize differently",
    }.get(word, f"{word} (fewer pairs than a Wilcoxon test needs)")
    ci = f"[95% CI {comparison['ci_low']:+.4f}, {comparison['ci_high']:+.4f}]"
    return (
        f"Test MSE, {comparison['comparison']} (paired by lr, wd, rho and seed): {sentence}: mean difference "
        f"{comparison['mean_diff']:+.4f} {ci}, n = {comparison['n_pairs']} pairs, t-test "
        f"{_p(comparison['p_t'])}, Wilcoxon {_p(comparison['p_wilcoxon'])}",
        word,
    )


def measure_test_line(corr: pd.DataFrame, alpha: float) -> str:
    """Did the flatter models (lower measure) have the lower test MSE?"""
    went: dict = {"lower": [], "higher": [], None: []}
    for r in corr.itertuples():
        key = None if math.isnan(r.p) or r.p >= alpha else "lower" if r.tau > 0 else "higher"
        went[key].append(f"{r.measure} ({_tau(r)})")
    parts = [f"went with {w} test MSE by {', '.join(went[w])}" for w in ("lower", "higher") if went[w]]
    if went[None]:
        parts.append(f"no significant relation by {', '.join(went[None])}")
    return "Flatter minima " + "; ".join(parts)


def lr_test_line(r, alpha: float) -> tuple[str, str]:
    """(the line, what it says) of whether the larger steps had the lower test MSE."""
    word = {"flatter": "went with lower test MSE", "sharper": "went with higher test MSE"}.get(
        direction("lr", r.tau, r.p, alpha), "no significant relation with test MSE"
    )  # "flatter" here: tau < 0, lower test MSE at larger lr
    return f"Larger steps (lr) {word} ({_tau(r)})", word


def gist(variable: str, flat: dict, measures: int, test_mse: str) -> str:
    """How many measures found the noisier side flatter (and sharper), and what its test MSE did."""
    said = f"{NOISIER[variable][0]} gave flatter minima by {len(flat['flatter'])} of {measures} measures"
    said += f" (sharper by {len(flat['sharper'])})"
    if test_mse in ("better", "worse"):
        return f"{said} and generalized {test_mse}"
    return f"{said}; test MSE: {test_mse}" if variable == "batch_size" else f"{said} and {test_mse}"


def correlations(cells: pd.DataFrame, measures: list[str]) -> pd.DataFrame:
    """`stats.rank_correlations` of batch size and lr with each measure and test MSE, and of each measure with
    test MSE: over all models and within each optimizer."""
    by_setting = rank_correlations(cells, ["batch_size", "lr"], [*measures, "test_mse"])
    return pd.concat([by_setting, rank_correlations(cells, measures, ["test_mse"])], ignore_index=True)


def scope_lines(scope: str, corr: pd.DataFrame, comps: pd.DataFrame, measures: list[str], alpha: float) -> list:
    """The verdict lines of one optimizer (or "all")."""
    corr = corr[corr["optimizer"] == scope]
    flat_of = corr["target"].isin(measures)
    batch_line, batch_flat = flatness_line("batch_size", corr[(corr["measure"] == "batch_size") & flat_of], alpha)
    lr_line, lr_flat = flatness_line("lr", corr[(corr["measure"] == "lr") & flat_of], alpha)
    chosen = comps[comps["optimizer"] == scope]
    batch_test_line, batch_test = generalization_line(chosen.iloc[0] if len(chosen) else None, alpha)
    on_test = corr[corr["target"] == "test_mse"]
    lr_line_test, lr_test = lr_test_line(on_test[on_test["measure"] == "lr"].iloc[0], alpha)
    verdicts = [gist("batch_size", batch_flat, len(measures), batch_test), gist("lr", lr_flat, len(measures), lr_test)]
    title = "All optimizers" if scope == "all" else scope.upper()
    return [
        f"#### {title}",
        "",
        f"- {batch_line}",
        f"- {lr_line}",
        f"- {batch_test_line}",
        f"- {lr_line_test}",
        f"- {measure_test_line(on_test[on_test['measure'].isin(measures)], alpha)}",
        f"- **Verdict ({title}): {'; '.join(verdicts)}.**",
        "",
    ]


def section(name: str, cells: pd.DataFrame, alpha: float = 0.05) -> list[str]:
    """The summary's section for one experiment, [] unless it sweeps batch_size (one experiment's cells)."""
    if "batch_size" not in sweep_axes(cells):
        return []
    lines = [f"## {name}: do smaller batches and larger steps find flatter minima, and do they generalize better?", ""]
    measures = measure_columns(cells)
    if not measures:
        return [*lines, "No flatness measure in cells.csv (every analysis measure off): nothing to relate.", ""]
    sizes = sorted(cells["batch_size"].dropna().unique())
    contrast = f"batch_size={fmt_value('batch_size', sizes[0])} vs batch_size={fmt_value('batch_size', sizes[-1])}"
    comps = paired(cells, "batch_size")
    comps = comps[(comps["comparison"] == contrast) & (comps["lrs"] == "all")]
    lines += [
        f"Batch sizes {', '.join(fmt_value('batch_size', b) for b in sizes)}; Kendall tau over the models that did "
        f"not diverge; every measure reads higher = sharper; p < {alpha} counts. Smaller batches count as flatter when "
        f"tau(batch_size, measure) > 0, larger steps when tau(lr, measure) < 0.",
        "",
    ]
    optimizers = sorted(cells["optimizer"].unique())
    scopes = ["all", *optimizers] if len(optimizers) > 1 else optimizers  # one optimizer: "all" is the same
    corr = correlations(cells, measures)
    for scope in scopes:
        lines += scope_lines(scope, corr, comps, measures, alpha)
    return lines
