"""The talk's four conclusions, evaluated on a study's numbers (and, as a sanity check, on the talk's own).

The rule, stated in every vs_talk.md, is `RULE` below (a constant: docstrings are gone under `python -OO`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
from tabulate import tabulate

from genboost.analysis.formats import number, p_value
from genboost.analysis.stats import CONFIG, cell_stats, is_diverged, paired_tests
from genboost.compare.picks import is_fallback, pick, picked
from genboost.compare.scale import MEANING, rel_text, with_relative
from genboost.config.optimizers import NAMES, label
from genboost.config.study import fmt_number

ALPHA = 0.05
TALK_LR = 3e-3  # the talk's best Adam learning rate
REPRODUCED, NOT_REPRODUCED, WITHIN_NOISE, NOT_TESTABLE = "reproduced", "not reproduced", "within noise", "not testable"
# The roles of the two experiments a claim's sides are picked from (not their names, which the config gives):
# a main-like run, and its second chance (the experiment that `continues` it). The talk names them so.
MAIN_LIKE, SECOND_CHANCE = "main", "second_chance"
# The talk's two optimizers, found in the registry by the labels the talk gives them.
SGD, ADAM = ({label(n): n for n in NAMES}[talk] for talk in ("SGD", "Adam"))


# The rule, one for all four conclusions, as every vs_talk.md states it (in one paragraph).
RULE = " ".join(
    """
The rule, one for all four: each claim compares two quantities, e.g. the best SAM configuration against
the best plain one, each the configuration with the lowest mean test MSE over seeds in its set (a
configuration with a diverged seed has no mean and cannot be best). Δ = (the side the talk says is
better) - (the other side), in test MSE, so Δ < 0 points the talk's way ("does not beat" claims also
accept Δ = 0). If our point estimates point the talk's way, the verdict is "reproduced". If they point
the other way and the paired comparison over seeds is significant (the two configurations' test MSE paired
by seed, pairs with a diverged side dropped; `genboost.analysis.stats.paired_tests`, paired t-test p < 0.05: with 3
seeds the Wilcoxon test can never reach 0.05), it is "not reproduced"; otherwise "within noise". A claim
whose configurations the inputs lack is "not testable". A conclusion of two parts (C1) is reproduced only
when both are; "not reproduced" in any part outweighs "not testable", which outweighs "within noise".
Both configurations are picked by the same test MSE they are then compared on, so a "reproduced" is
optimistic for whichever side holds more configurations.

On a published table (one mean per configuration, no seeds) only the direction can be checked:
"reproduced" when the point estimates point the claimed way, else "not reproduced".
""".split()
)


@dataclass(frozen=True)
class Numbers:
    """One mean test MSE per configuration (`means`), and the per-seed cells behind them (None: a published
    table, point estimates only)."""

    means: pd.DataFrame
    cells: pd.DataFrame | None

    @classmethod
    def from_cells(cls, cells: pd.DataFrame) -> Numbers:
        means = with_relative(cell_stats(cells, intervals=False), cells)
        return cls(means, cells.assign(_div=is_diverged(cells)))

    @classmethod
    def from_table(cls, rows: pd.DataFrame) -> Numbers:
        return cls(rows.rename(columns={"mean_test_mse": "mean"}), None)


Select = Callable[[pd.DataFrame], pd.Series]  # the boolean mask of a side's configurations in a means frame


def _at_talk_lr(m: pd.DataFrame) -> pd.Series:
    return (m["optimizer"] == ADAM) & np.isclose(m["lr"], TALK_LR, rtol=1e-9, atol=0)


@dataclass(frozen=True)
class Part:
    """One comparison a conclusion rests on: `better` is the side the talk says has the lower test MSE."""

    claim: str
    better: str
    better_from: str
    better_select: Select
    other: str
    other_from: str
    other_select: Select
    strict: bool  # True: the better side must be lower; False ("does not beat"): lower or equal
    # What the grid must hold for each side (better, other): a claim whose side it lacks reads "not testable: the
    # grid has no Adam at lr 3e-3".
    needs: tuple[str, str] = ("", "")


@dataclass(frozen=True)
class Outcome:
    part: Part
    verdict: str
    better: pd.Series | None  # the chosen configuration (CONFIG and its mean), None when not testable
    other: pd.Series | None
    delta: float  # better mean - other mean
    stats: dict  # paired_tests() of better - other by seed; n_pairs 0 for a published table
    reason: str = ""


@dataclass(frozen=True)
class Conclusion:
    key: str
    text: str
    parts: tuple[Outcome, ...]
    verdict: str


CONCLUSIONS: dict[str, tuple[str, tuple[Part, ...]]] = {
    "C1": (
        "Adam with lr 3e-3 works best, and weight decay improves it",
        (
            Part("Adam at lr 3e-3 is the best configuration", "best Adam lr 3e-3", MAIN_LIKE, _at_talk_lr,
                 "best other configuration", MAIN_LIKE, lambda m: ~_at_talk_lr(m), strict=True,
                 needs=("Adam at lr 3e-3", "configuration besides Adam at lr 3e-3")),
            Part("weight decay improves Adam at lr 3e-3 (no SAM)", "best wd > 0", MAIN_LIKE,
                 lambda m: _at_talk_lr(m) & (m["rho"] == 0) & (m["wd"] > 0), "wd = 0", MAIN_LIKE,
                 lambda m: _at_talk_lr(m) & (m["rho"] == 0) & (m["wd"] == 0), strict=True,
                 needs=("Adam at lr 3e-3 without SAM and wd > 0", "Adam at lr 3e-3 without SAM and wd 0")),
        ),
    ),
    "C2": (
        "SAM does not help",
        (Part("the best SAM configuration does not beat the best plain one", "best plain", MAIN_LIKE,
              lambda m: m["rho"] == 0, "best SAM", MAIN_LIKE, lambda m: m["rho"] > 0, strict=False,
              needs=("configuration without SAM (rho 0)", "SAM (rho > 0)")),),
    ),
    "C3": (
        "SGD is not supported",
        (Part("SGD's best is behind Adam's best", "best Adam", MAIN_LIKE, lambda m: m["optimizer"] == ADAM,
              "best SGD", MAIN_LIKE, lambda m: m["optimizer"] == SGD, strict=True, needs=("Adam", "SGD")),),
    ),
    "C4": (
        "a second chance for SAM (rho 0.02, 200 epochs) does not beat plain Adam",
        (Part("the best second-chance configuration does not beat the best plain Adam", "best plain Adam", MAIN_LIKE,
              lambda m: (m["optimizer"] == ADAM) & (m["rho"] == 0), "best second chance", SECOND_CHANCE,
              lambda m: (m["optimizer"] == ADAM) & (m["rho"] > 0), strict=False,
              needs=("Adam without SAM", "Adam with SAM (rho > 0)")),),
    ),
}  # fmt: skip


def _pick(numbers: Numbers, select: Select) -> pd.Series | None:
    return pick(numbers.means[select(numbers.means)], numbers.cells)


def _seed_values(numbers: Numbers, config: pd.Series) -> pd.DataFrame:
    cells = numbers.cells
    match = np.logical_and.reduce([cells[c] == config[c] for c in CONFIG])
    return cells.loc[match, ["seed", "test_mse", "_div"]]


def _paired_stats(x_numbers: Numbers, x: pd.Series, y_numbers: Numbers, y: pd.Series) -> dict:
    if x_numbers.cells is None or y_numbers.cells is None:
        return paired_tests(np.array([]))
    m = _seed_values(x_numbers, x).merge(_seed_values(y_numbers, y), on="seed", suffixes=("_x", "_y"))
    ok = ~(m["_div_x"] | m["_div_y"])
    return paired_tests((m.loc[ok, "test_mse_x"] - m.loc[ok, "test_mse_y"]).to_numpy(dtype=float))


def _not_testable(part: Part, reason: str) -> Outcome:
    return Outcome(part, NOT_TESTABLE, None, None, math.nan, paired_tests(np.array([])), reason)


# Why a part lacks its numbers when a whole experiment is missing, by the role it plays.
MISSING = {
    MAIN_LIKE: "no main-like experiment given",
    SECOND_CHANCE: "no experiment continues this one (config key continues: its second chance)",
}


def _missing_side(numbers: Numbers, select: Select, needs: str) -> str:
    """Why a side has no best: the grid (or table) has none of its configurations, or each has a diverged seed."""
    where = "table" if numbers.cells is None else "grid"
    if not select(numbers.means).any():
        return f"the {where} has no {needs}"
    return f"every {needs} configuration of the {where} has a diverged seed"


def evaluate_part(part: Part, frames: dict[str, Numbers | None]) -> Outcome:
    """One part's verdict by the rule of the module docstring."""
    xs, ys = frames[part.better_from], frames[part.other_from]
    if xs is None or ys is None:
        return _not_testable(part, MISSING[part.better_from if xs is None else part.other_from])
    x, y = _pick(xs, part.better_select), _pick(ys, part.other_select)
    if x is None:
        return _not_testable(part, _missing_side(xs, part.better_select, part.needs[0]))
    if y is None:
        return _not_testable(part, _missing_side(ys, part.other_select, part.needs[1]))
    if is_fallback(x) or is_fallback(y):  # the grid cannot judge it; the fresh seeds judge the two picks
        side = (xs, part.better_select, part.needs[0]) if is_fallback(x) else (ys, part.other_select, part.needs[1])
        return replace(_not_testable(part, _missing_side(*side)), better=x, other=y)
    delta = float(x["mean"] - y["mean"])
    stats = _paired_stats(xs, x, ys, y)
    if delta < 0 or (delta == 0 and not part.strict):
        verdict = REPRODUCED
    elif xs.cells is None or ys.cells is None:
        verdict = NOT_REPRODUCED  # a published table: the direction is all there is
    else:
        verdict = NOT_REPRODUCED if stats["p_t"] < ALPHA else WITHIN_NOISE  # NaN p (< 2 pairs): within noise
    return Outcome(part, verdict, x, y, delta, stats)


def _combine(verdicts: list[str]) -> str:
    for verdict in (NOT_REPRODUCED, NOT_TESTABLE, WITHIN_NOISE):
        if verdict in verdicts:
            return verdict
    return REPRODUCED


def _evaluate(frames: dict[str, Numbers | None]) -> list[Conclusion]:
    out = []
    for key, (text, parts) in CONCLUSIONS.items():
        outcomes = tuple(evaluate_part(p, frames) for p in parts)
        out.append(Conclusion(key, text, outcomes, _combine([o.verdict for o in outcomes])))
    return out


def evaluate(main: pd.DataFrame | None, second_chance: pd.DataFrame | None = None) -> list[Conclusion]:
    """C1-C4 on our cells: C1-C3 from a main-like experiment's cells, C4 from second-chance cells against them."""
    frames = {MAIN_LIKE: main, SECOND_CHANCE: second_chance}
    return _evaluate({k: None if v is None else Numbers.from_cells(v) for k, v in frames.items()})


def evaluate_published(main_rows: pd.DataFrame | None, second_chance_rows: pd.DataFrame | None = None):
    """C1-C4 on a published table's rows (point estimates; `genboost.compare.agreement.published_rows`)."""
    frames = {MAIN_LIKE: main_rows, SECOND_CHANCE: second_chance_rows}
    return _evaluate({k: None if v is None else Numbers.from_table(v) for k, v in frames.items()})


def _fmt(x: float) -> str:
    return number(x, "+.4f")


def _config(c: pd.Series, with_experiment: bool) -> str:
    sam = f"SAM rho {fmt_number(c['rho'])}" if c["rho"] > 0 else "no SAM"
    head = f"{c['experiment']}: " if with_experiment else ""
    name = label(c["optimizer"])
    return f"{head}{name} lr {fmt_number(c['lr'])} wd {fmt_number(c['wd'])}, {sam}"


def _side(o: Outcome, better: bool) -> str:
    c, label = (o.better, o.part.better) if better else (o.other, o.part.other)
    if c is None:
        return "–"
    cross = o.part.better_from != o.part.other_from  # C4: name the experiment each side comes from
    return f"{picked(label, c)}: {c['mean']:.4f}{rel_text(c)} ({_config(c, cross)})"


def _verdict_text(o: Outcome) -> str:
    return f"{o.verdict}: {o.reason}" if o.reason else o.verdict


def conclusions_markdown(ours: list[Conclusion], talk: list[Conclusion] | None = None) -> str:
    """The verdicts in one line each, then every part's numbers (ours, and the talk's point estimates beside)."""
    talk_by_key = {c.key: c for c in talk or []}
    lines = []
    for c in ours:
        own = f" (the talk's own numbers: {talk_by_key[c.key].verdict})" if c.key in talk_by_key else ""
        lines.append(f"- **{c.key}** {c.text}: **{c.verdict}**{own}")
    headers = ["", "claim", "the talk's better side (ours)", "other side (ours)", "Δ", "95% CI", "p (t)", "pairs",
               "verdict", "talk: Δ", "talk: verdict"]  # fmt: skip
    rows = []
    for c in ours:
        talk_parts = talk_by_key[c.key].parts if c.key in talk_by_key else [None] * len(c.parts)
        for o, t in zip(c.parts, talk_parts, strict=True):
            s = o.stats
            rows.append([
                c.key, o.part.claim, _side(o, True), _side(o, False), _fmt(o.delta),
                f"[{_fmt(s['ci_low'])}, {_fmt(s['ci_high'])}]", p_value(s["p_t"]), s["n_pairs"], _verdict_text(o),
                "–" if t is None else _fmt(t.delta), "–" if t is None else _verdict_text(t),
            ])  # fmt: skip
    table = tabulate(rows, headers=headers, tablefmt="github", disable_numparse=True)
    note = (
        "Δ = the talk's better side - the other side (test MSE; < 0 is the talk's way); 95% CI, p (paired "
        "t-test) and pairs are over seeds, of the two configurations' test MSE paired by seed. Each side is the "
        f"best configuration of its set (best against best). {MEANING}"
    )
    return "\n".join([*lines, "", note, "", table, ""])
