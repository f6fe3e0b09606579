"""The matrix of the talk's conclusions: one column per setup (a main-like experiment compared with the talk's
tables) and one per other experiment (judged on its own cells and grid: genboost.config.study.Study.talk_experiments),
each verdict with the numbers that decide it, or, where its grid lacks a side of a claim, the side it lacks."""

from __future__ import annotations

import math

import pandas as pd
from tabulate import tabulate

from genboost.analysis.best import best
from genboost.analysis.stats import cell_stats
from genboost.compare.conclusions import NOT_TESTABLE, Conclusion, evaluate
from genboost.compare.scale import RELATIVE, has_relative

Frames = tuple[pd.DataFrame | None, pd.DataFrame | None]  # (main-like cells, its second chance's cells or None)


def matrix_entry(c: Conclusion, relative: Conclusion | None = None) -> str:
    """A verdict and the numbers that decide it, e.g. "reproduced (Δ -0.058, p 0.012)"; with `relative` (the same
    conclusion on test MSE / test-label variance) the Δ in those units too: "(Δ -0.058, rel -0.012, p 0.012)"."""
    i = next(k for k, part in enumerate(c.parts) if part.verdict == c.verdict)  # the deciding part
    o = c.parts[i]
    if c.verdict == NOT_TESTABLE:
        return f"{NOT_TESTABLE}: {o.reason}"
    p = "" if math.isnan(o.stats["p_t"]) else f", p {o.stats['p_t']:.2g}"
    rel_delta = math.nan if relative is None else relative.parts[i].delta
    rel = "" if math.isnan(rel_delta) else f", rel {rel_delta:+.3f}"
    return f"{c.verdict} (Δ {o.delta:+.3f}{rel}{p})"


def _relative(cells: pd.DataFrame | None) -> pd.DataFrame | None:
    """The cells scored by test MSE / test-label variance (a constant per dataset, so no best or verdict changes);
    None where cells.csv has no such numbers."""
    if not has_relative(cells):
        return None
    return cells.assign(test_mse=cells[RELATIVE])


def best_entry(cells: pd.DataFrame | None) -> str:
    """The best configuration's mean test MSE, and its mean test MSE / test-label variance where known."""
    top = None if cells is None else best(cell_stats(cells, intervals=False))
    if top is None:
        return "–"
    rel = _relative(cells)
    top_rel = None if rel is None else best(cell_stats(rel, intervals=False))
    return f"{top['mean']:.4f}" + ("" if top_rel is None else f" (rel {top_rel['mean']:.3f})")


def conclusion_matrix(setups: dict[str, Frames], datasets: dict[str, Frames] | None = None) -> str:
    """Markdown: rows the four conclusions and the best test MSE, columns the setups then the other experiments
    ("datasets", header -> frames); such a column's Δ is quoted relative to its test-label variance too, so that
    datasets read side by side. Then one line per further column naming the conclusions whose verdict differs from
    the first column's."""
    datasets = datasets or {}
    columns = {**setups, **datasets}
    if not columns:
        raise ValueError("conclusion_matrix: no setups or datasets given")
    if len(columns) < len(setups) + len(datasets):
        raise ValueError(f"conclusion_matrix: a column named twice in {list(setups)} and {list(datasets)}")
    results = {name: evaluate(main, second) for name, (main, second) in columns.items()}
    relative = {name: _relative_results(*datasets[name]) for name in datasets}
    names = list(results)
    rows = [
        [f"{c.key}: {c.text}", *(matrix_entry(results[n][i], _at(relative.get(n), i)) for n in names)]
        for i, c in enumerate(results[names[0]])
    ]
    rows.append(["best test MSE (rel: ÷ test-label variance)", *(best_entry(columns[n][0]) for n in names)])
    table = tabulate(rows, headers=["conclusion", *names], tablefmt="github", disable_numparse=True)
    lines = [table, ""]
    for name in names[1:]:
        pairs = list(zip(results[names[0]], results[name], strict=True))
        testable = [(a, b) for a, b in pairs if NOT_TESTABLE not in (a.verdict, b.verdict)]
        flips = [f"{a.key} ({a.verdict} → {b.verdict})" for a, b in testable if a.verdict != b.verdict]
        said = f"flips {', '.join(flips)}" if flips else "flips no conclusion"
        untested = [b.key for _, b in pairs if b.verdict == NOT_TESTABLE]
        there = f" ({', '.join(untested)} not testable there)" if untested else ""
        lines.append(f"- {name}: {said} relative to {names[0]}{there}")
    return "\n".join(lines).rstrip() + "\n"


def _relative_results(main: pd.DataFrame | None, second: pd.DataFrame | None) -> list[Conclusion] | None:
    rel_main = _relative(main)
    return None if rel_main is None else evaluate(rel_main, _relative(second))


def _at(conclusions: list[Conclusion] | None, i: int) -> Conclusion | None:
    return None if conclusions is None else conclusions[i]
