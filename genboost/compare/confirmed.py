"""The confirmation on fresh seeds in the reports: vs_talk.md's "Confirmed on N fresh seeds" section and
summary.md's matrix of the confirmed verdicts with each experiment's winner's curse (the verdicts and their texts:
genboost.compare.confirm_report)."""

from __future__ import annotations

import math

import pandas as pd
from tabulate import tabulate

from genboost.analysis.best import best
from genboost.analysis.stats import cell_stats
from genboost.compare import confirm, confirm_report
from genboost.compare.conclusions import Conclusion, evaluate
from genboost.compare.picks import FALLBACK, is_fallback
from genboost.data.splits import label_variance


def section(grid: list[Conclusion], fresh_csv: str, test_csv: str, fraction: float, *cells: pd.DataFrame | None) -> str:
    """The "Confirmed on N fresh seeds" section: the grid's picks (`grid`) judged on their fresh models alone, with
    the margin `fraction` × the test labels' variance, quoted in % of the best grid test MSE of `cells`."""
    fresh = pd.read_csv(fresh_csv)
    m = confirm.margin(test_csv, fraction)
    top = best(cell_stats(pd.concat([c for c in cells if c is not None]), intervals=False))
    confirmed = confirm_report.confirm(grid, fresh, m)
    best_mse = math.nan if top is None else top["mean"]
    return confirm_report.confirmed_markdown(confirmed, fresh["seed"].nunique(), m, best_mse, label_variance(test_csv))


def seconds(setups: dict[str, str | None], datasets: dict[str, dict]) -> dict[str, str | None]:
    """Every column's experiment (the summary's setups and datasets) -> its second chance or None."""
    return {**setups, **{n: d.get("second_chance") for n, d in datasets.items()}}


def matrix(columns: dict[str, tuple]) -> list[str]:
    """The matrix of the conclusions confirmed on fresh seeds (title -> (main-like cells, second chance's or None,
    fresh models' rows, margin in test MSE, experiment)), then each experiment's winner's curse in one line."""
    if not columns:
        return []
    judged = {title: confirm_report.confirm(evaluate(main, second), fresh, m)
              for title, (main, second, fresh, m, _) in columns.items()}  # fmt: skip
    first = next(iter(judged.values()))
    rows = [[f"{c.key}: {c.text}", *(confirm_report.verdict_cell(judged[t][i]) for t in judged)]
            for i, c in enumerate(first)]  # fmt: skip
    seeds = {t: columns[t][2]["seed"].nunique() for t in columns}
    table = tabulate(rows, headers=["conclusion", *judged], tablefmt="github", disable_numparse=True)
    curse = [confirm_report.curse_line(columns[t][4], judged[t], seeds[t]) for t in judged]
    counts = "/".join(sorted({str(n) for n in seeds.values()}))
    fallback = [FALLBACK, ""] if any(_has_fallback(c) for t in judged for c in judged[t]) else []
    return [f"### Confirmed on {counts} fresh seeds", "", table, "", *fallback, "The winner's curse:", "", *curse, ""]


def _has_fallback(c: confirm_report.Confirmed) -> bool:
    """Whether a side of one of the conclusion's parts was picked by the fallback (conclusions.FALLBACK)."""
    return any(side is not None and is_fallback(side) for p in c.parts for side in (p.better, p.other))
