"""The talk's conclusions confirmed on fresh seeds (genboost.compare.confirm), and how they read in the reports:
vs_talk.md's "Confirmed on N fresh seeds" section, summary.md's matrix cell and its winner's-curse line."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from tabulate import tabulate

from genboost.analysis.formats import MISSING, number, p_value
from genboost.analysis.stats import config_columns, is_diverged
from genboost.compare.conclusions import NOT_TESTABLE, Conclusion, Outcome, Part, _config, _fmt
from genboost.compare.confirm import PAIRS, RULES, SIGN_TEST, UNDECIDED, Fresh, judge, weakest
from genboost.compare.picks import is_fallback, picked


@dataclass(frozen=True)
class Checked:
    """One claim part: the configurations the grid's seeds picked (their config columns and grid `mean`; None
    where the grid could not test the part) and their verdict on fresh seeds (None likewise)."""

    part: Part
    better: pd.Series | None
    other: pd.Series | None
    fresh: Fresh | None
    reason: str = ""  # why the grid could not test the part (conclusions.Outcome.reason)

    @property
    def verdict(self) -> str:
        return NOT_TESTABLE if self.fresh is None else self.fresh.verdict


@dataclass(frozen=True)
class Confirmed:
    key: str
    text: str
    parts: tuple[Checked, ...]
    verdict: str  # the weakest of its parts'


def runs(cells: pd.DataFrame, config: pd.Series) -> pd.DataFrame:
    """A configuration's models in `cells` (matched on every config column the two share; a setting neither
    has, NaN, matches): seed, test_mse, diverged."""
    keys = [c for c in config_columns(cells) if c in config.index]
    same = [(cells[c] == config[c]) | (cells[c].isna() & pd.isna(config[c])) for c in keys]
    match = np.logical_and.reduce(same)
    return pd.DataFrame({"seed": cells["seed"], "test_mse": cells["test_mse"], "diverged": is_diverged(cells)})[match]


def pairs(fresh_cells: pd.DataFrame, better: pd.Series, other: pd.Series) -> pd.DataFrame:
    """judge()'s input: the two configurations' fresh models paired by seed (the seeds both have)."""
    b, o = runs(fresh_cells, better), runs(fresh_cells, other)
    paired = b.merge(o, on="seed", suffixes=("_better", "_other")).sort_values("seed")
    names = {f"{v}_{side}": f"{side}_{'mse' if v == 'test_mse' else v}" for v in ("test_mse", "diverged")
             for side in ("better", "other")}  # fmt: skip
    return paired.rename(columns=names)[list(PAIRS)].reset_index(drop=True)


def check(outcome: Outcome, fresh_cells: pd.DataFrame, m: float) -> Checked:
    """A grid outcome's two picks (conclusions.evaluate) judged on their fresh cells alone."""
    if outcome.better is None or outcome.other is None:
        return Checked(outcome.part, outcome.better, outcome.other, None, outcome.reason)
    fresh = judge(outcome.part.strict, pairs(fresh_cells, outcome.better, outcome.other), m)
    return Checked(outcome.part, outcome.better, outcome.other, fresh)


def confirm(conclusions: list[Conclusion], fresh_cells: pd.DataFrame, m: float) -> list[Confirmed]:
    """Every conclusion's parts on fresh seeds: `conclusions` as evaluated on the grid (their picks), the
    fresh cells of every experiment they pick from (cells.csv rows), the margin m in test MSE."""
    out = []
    for c in conclusions:
        parts = tuple(check(o, fresh_cells, m) for o in c.parts)
        out.append(Confirmed(c.key, c.text, parts, weakest(p.verdict for p in parts)))
    return out


def winners_curse(confirmed: list[Confirmed]) -> pd.DataFrame:
    """Per configuration a part picked (each once): its mean test MSE on the grid's seeds (a fallback pick's: over
    its finished seeds only, as "picked as" and `fallback` say), on the fresh seeds (its models that finished), and
    the optimism, fresh - grid (> 0: the grid's pick looked better than it is)."""
    rows = {}
    for c in confirmed:
        for p in c.parts:
            if p.fresh is None:
                continue
            for side, fresh_mean, label in ((p.better, p.fresh.better_mean, p.part.better),
                                            (p.other, p.fresh.other_mean, p.part.other)):  # fmt: skip
                name = _config(side, with_experiment=True)
                rows.setdefault(name, [name, f"{c.key}: {picked(label, side)}", float(side["mean"]), fresh_mean,
                                       is_fallback(side)])  # fmt: skip
    columns = ["configuration", "picked as", "grid_mean", "fresh_mean", "fallback"]
    frame = pd.DataFrame(list(rows.values()), columns=columns)
    return frame.assign(optimism=frame["fresh_mean"] - frame["grid_mean"])


def margin_text(m: float, best_mse: float, of: str = " of the best test MSE") -> str:
    """m in test MSE and in % of the best test MSE, e.g. "0.0394 (2.1% of the best test MSE)"."""
    return f"{m:.4f}" + ("" if not best_mse > 0 else f" ({100 * m / best_mse:.1f}%{of})")


def _interval(ci: tuple[float, float], spec: str = "+.4f") -> str:
    return f"[{number(ci[0], spec)}, {number(ci[1], spec)}]"


def _test(f: Fresh) -> str:
    diverged = f", {f.n_diverged} of {f.n} with a diverged side" if f.n_diverged else ""
    return f"{f.method} p {p_value(f.p)}{diverged}"


def _needed(f: Fresh) -> str:
    return MISSING if f.seeds_needed is None else f"{f.seeds_needed} (for {f.needed_for})"


def _with_rel(mse: float | None, variance: float) -> str:
    """A test MSE and, beside it, its value relative to the test labels' variance (1 − R²)."""
    return number(mse) if mse is None or not math.isfinite(mse) else f"{number(mse)} (rel {mse / variance:.3f})"


def _part_row(key: str, p: Checked, m: str, variance: float) -> list[str]:
    cross = p.part.better_from != p.part.other_from  # C4: name the experiment each side comes from
    sides = []
    for row, label, fresh in ((p.better, p.part.better, p.fresh and p.fresh.better_mean),
                              (p.other, p.part.other, p.fresh and p.fresh.other_mean)):  # fmt: skip
        config = MISSING if row is None else f"{picked(label, row)}: {_config(row, cross)}"
        sides += [config, MISSING if row is None else _with_rel(row["mean"], variance), _with_rel(fresh, variance)]
    f = p.fresh
    if f is None:
        return [key, p.part.claim, *sides, MISSING, MISSING, MISSING, m, NOT_TESTABLE, MISSING]
    return [key, p.part.claim, *sides, _fmt(f.mean), _interval(f.ci95), _test(f), m, f.verdict, _needed(f)]


def confirmed_markdown(confirmed: list[Confirmed], n_seeds: int, m: float, best_mse: float, variance: float) -> str:
    """vs_talk.md's section: the verdicts in one line each, then every part's two picks with their grid and
    fresh means (each with its `rel`: ÷ `variance`, the test labels'), Δ on the fresh seeds, its interval and
    test, the margin, the verdict and the seeds needed."""
    m_text = margin_text(m, best_mse)
    lines = [f"## Confirmed on {n_seeds} fresh seeds", "", RULES, "", f"Margin m = {m_text}.", ""]
    lines += [f"- **{c.key}** {c.text}: **{c.verdict}**" for c in confirmed]
    headers = ["", "claim", "the talk's better side", "grid", "fresh", "other side", "grid", "fresh", "Δ (fresh)",
               "95% CI", "test", "m (% of best)", "verdict", "seeds needed"]  # fmt: skip
    rows = [_part_row(c.key, p, margin_text(m, best_mse, of=""), variance) for c in confirmed for p in c.parts]
    table = tabulate(rows, headers=headers, tablefmt="github", disable_numparse=True)
    note = (
        "grid: mean test MSE on the grid's seeds, which picked the configuration (a fallback pick's: over its "
        "finished seeds); fresh: on the fresh seeds "
        "(models that finished); rel: ÷ the variance of the test labels. Δ = the talk's better side - the other "
        "side, fresh seeds only; the 95% CI is of the mean Δ (paired t) or, where a model diverged, of the median "
        "Δ (sign test)."
    )
    return "\n".join([*lines, "", note, "", table, ""])


def verdict_cell(c: Confirmed) -> str:
    """summary.md's matrix entry: the verdict and the numbers of the part that decides it, e.g.
    "confirmed (Δ -0.012 [-0.020, -0.004])", "undecided (Δ +0.010 [-0.03, +0.05], ≈ 45 seeds)" or, where a model
    diverged, "confirmed (sign test, 11 of 20 diverged: median Δ in [-inf, -2.423]; mean Δ of the finished ...)"."""
    if c.verdict == NOT_TESTABLE:
        reason = next(p.reason for p in c.parts if p.verdict == NOT_TESTABLE)
        return f"{NOT_TESTABLE}: {reason}" if reason else NOT_TESTABLE
    p = next(p for p in c.parts if p.verdict == c.verdict)
    f = p.fresh
    needed = f", ≈ {f.seeds_needed} seeds" if f.verdict == UNDECIDED and f.seeds_needed is not None else ""
    picks = "".join(f"; {picked(label, row)}" for row, label in _sides(p) if is_fallback(row))
    return f"{c.verdict} ({_delta(f)}{needed}{picks})"


def _delta(f: Fresh) -> str:
    """Δ and its 95% interval as the verdict read them: of the mean (paired t), or, where a model diverged, of the
    median (sign test), beside the mean Δ of the pairs that finished, which that interval is not about."""
    if f.method != SIGN_TEST:
        return f"Δ {number(f.mean, '+.3f')} {_interval(f.ci95, '+.3f')}"
    finished = f"; mean Δ of the finished pairs {number(f.mean, '+.3f')}" if math.isfinite(f.mean) else ""
    return f"sign test, {f.n_diverged} of {f.n} diverged: median Δ in {_interval(f.ci95, '+.3f')}{finished}"


def _sides(p: Checked) -> tuple[tuple[pd.Series | None, str], ...]:
    return (p.better, p.part.better), (p.other, p.part.other)


def curse_line(experiment: str, confirmed: list[Confirmed], n_seeds: int) -> str:
    """summary.md's line on how optimistic an experiment's grid picks were, judged on the fresh seeds."""
    curse = winners_curse(confirmed).dropna(subset=["optimism"])
    if curse.empty:
        return f"- {experiment}: no pick to check on fresh seeds"
    worst = curse.loc[curse["optimism"].idxmax()]
    fallback = int(curse["fallback"].sum())
    fallback_text = f" ({fallback} by the fallback: grid mean over its finished seeds only)" if fallback else ""
    return (
        f"- {experiment}: the grid's {len(curse)} picks{fallback_text} on {n_seeds} fresh seeds: fresh mean - grid "
        f"mean {number(curse['optimism'].mean(), '+.4f')} on average, at most {number(worst['optimism'], '+.4f')} "
        f"({worst['picked as']}); > 0: the grid's seeds flattered the pick"
    )
