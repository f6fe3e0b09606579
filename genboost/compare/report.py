"""vs_talk.md, .csv, .png and .pdf of one experiment: its tables beside the talk's and the talk's conclusions."""

from __future__ import annotations

import math

import pandas as pd
from tabulate import tabulate

from genboost import files
from genboost.analysis import tables
from genboost.analysis.formats import number as _num
from genboost.analysis.formats import sam_label
from genboost.compare import confirmed
from genboost.compare.agreement import (
    BOTH,
    OURS_ONLY,
    TALK_ONLY,
    agreement,
    compare_configurations,
    comparison_csv,
    load_published,
    one_experiment,
    published_rows,
)
from genboost.compare.conclusions import RULE, Conclusion, conclusions_markdown, evaluate, evaluate_published
from genboost.compare.figure import comparison_figure
from genboost.config.study import TABLE_AXES, fmt_number
from genboost.data.splits import label_variance

LISTED = 12  # configurations on one side only named in full; the rest are counted


def _agreement_table(agree: pd.DataFrame) -> str:
    headers = ["table", "compared", "diverged (ours)", "ours only", "talk only", "Spearman", "Pearson",
               "mean \\|ours − talk\\|"]  # fmt: skip
    rows = [
        ["all" if r.optimizer == "all" else f"{r.optimizer.upper()}, {sam_label(r.rho)}", r.compared, r.diverged,
         r.ours_only, r.talk_only, _num(r.spearman, ".3f"), _num(r.pearson, ".3f"), _num(r.mad)]
        for r in agree.itertuples()
    ]  # fmt: skip
    return tabulate(rows, headers=headers, tablefmt="github", disable_numparse=True)


def _one_side_lines(comparison: pd.DataFrame) -> list[str]:
    lines = []
    for side in (OURS_ONLY, TALK_ONLY):
        sel = comparison[comparison["side"] == side]
        if sel.empty:
            continue
        named = [
            f"{r.optimizer.upper()} rho {fmt_number(r.rho)} lr {fmt_number(r.lr)} wd {fmt_number(r.wd)}"
            for r in sel.head(LISTED).itertuples()
        ]
        more = f" and {len(sel) - LISTED} more" if len(sel) > LISTED else ""
        lines.append(f"- {side} ({len(sel)}): {'; '.join(named)}{more}")
    return lines


def _cell(r) -> str:
    ours = "diverged" if r.side != TALK_ONLY and math.isnan(r.ours_mean) else _num(r.ours_mean)
    if r.side == OURS_ONLY:
        return f"{ours} (talk –)"
    if r.side == BOTH and not math.isnan(r.diff):
        return f"{ours} (talk {r.talk_mean:.4f}, {r.diff:+.4f})"
    return f"{ours} (talk {r.talk_mean:.4f})"


def _layout_tables(comparison: pd.DataFrame) -> list[str]:
    """One table per optimizer x rho, in the talk's layout: rows lr, columns wd."""
    out = []
    for (opt, rho), g in comparison.groupby(list(TABLE_AXES), sort=True):
        text = g.assign(text=[_cell(r) for r in g.itertuples()])
        grid = text.pivot(index="lr", columns="wd", values="text").sort_index().sort_index(axis=1)
        headers = ["lr \\ wd", *(fmt_number(w) for w in grid.columns)]
        rows = [[fmt_number(lr), *("" if pd.isna(v) else v for v in grid.loc[lr])] for lr in grid.index]
        table = tabulate(rows, headers=headers, tablefmt="github", disable_numparse=True)
        out += [f"### {opt.upper()}, {sam_label(rho)}", "", table, ""]
    return out


# The heading of the grid's verdicts: the selection's, beside the confirmation on fresh seeds or without one.
SELECTION = "## The talk's conclusions on the grid's seeds (the selection)"
NOT_CONFIRMED = (
    "These verdicts judge on the same seeds that picked the configurations (config key confirm is null: no "
    "confirmation on fresh seeds)."
)


def vs_talk_markdown(
    experiment: str,
    reference_experiment: str,
    comparison: pd.DataFrame,
    ours: list[Conclusion],
    talk: list[Conclusion],
    sources: str,
    confirmation: str | None = None,
) -> str:
    """The whole vs_talk.md: agreement, the talk's conclusions confirmed on fresh seeds (`confirmation`, the
    section's Markdown; None: no confirmation), the same on the grid's seeds that picked them, the tables."""
    agree = agreement(comparison)
    fresh = [confirmation] if confirmation else []
    return "\n".join([
        f"# {experiment} against the talk's tables ({reference_experiment})",
        "",
        "Per configuration: our mean test MSE over seeds (none where a seed diverged) beside the talk's, "
        "matched on optimizer, rho, lr and wd; difference = ours − talk.",
        "",
        "## How well the numbers agree",
        "",
        _agreement_table(agree),
        "",
        *_one_side_lines(comparison),
        "",
        *fresh,
        SELECTION,
        "",
        *([] if confirmation else [NOT_CONFIRMED, ""]),
        RULE,
        "",
        sources,
        "",
        conclusions_markdown(ours, talk),
        "## The tables: ours (talk, ours − talk); rows lr, columns wd",
        "",
        *_layout_tables(comparison),
    ]).rstrip() + "\n"  # fmt: skip


def grid_cells(experiment: str, job_paths: list[str], test_csv: str, sweep=()) -> pd.DataFrame:
    """One experiment's models as its cells.csv reads back, but for the measures' columns, which no comparison
    reads: from its train jobs' files and its split's test labels (`test_csv`, for test_mse_rel), so that a new
    measure setting reruns no comparison. `sweep`: the experiment's swept keys, as its aggregate rule has them."""
    cells = tables.experiment_cells(experiment, job_paths, sweep, test_label_variance=label_variance(test_csv))
    return tables.as_read_back(cells)


def _check_experiment(cells: pd.DataFrame, experiment: str) -> None:
    name = one_experiment(cells)
    if name != experiment:
        raise ValueError(f"compare: got the cells of experiment {name!r}, expected {experiment!r}")


def write_vs_talk(
    experiment: str,
    cells: pd.DataFrame,
    reference_csv: str,
    reference_experiment: str,
    out_md: str,
    out_csv: str,
    out_png: str,
    out_pdf: str,
    partner: pd.DataFrame | None = None,
    partner_reference_experiment: str | None = None,
    continues_partner: bool = False,
    fresh_csv: str | None = None,
    test_csv: str | None = None,
    margin: float | None = None,
) -> None:
    """Compare one experiment's cells (`grid_cells`) with a published experiment's rows and evaluate the talk's
    conclusions.

    An experiment that continues none is main-like: C1-C3 come from its cells, C4 from its partner (the
    experiment that continues it, its second chance) against them, or is not testable without one. One that
    `continues_partner` is second-chance-like: C1-C3 come from its partner (the run it continues), C4 from it
    against them. The talk's side of the partner uses the published rows of `partner_reference_experiment`.
    `fresh_csv`, where its setup is confirmed: its picks' models on fresh seeds, judged with the margin `margin`
    × the variance of the labels of `test_csv`.
    """
    _check_experiment(cells, experiment)
    published = load_published(reference_csv)
    rows = published_rows(published, reference_experiment)
    comparison = compare_configurations(cells, rows)
    partner_rows = None
    if partner is not None:
        partner_rows = published_rows(published, partner_reference_experiment or one_experiment(partner))
    if not continues_partner:
        ours, talk = evaluate(cells, partner), evaluate_published(rows, partner_rows)
        main_name, second = experiment, one_experiment(partner) if partner is not None else None
    else:
        ours, talk = evaluate(partner, cells), evaluate_published(partner_rows, rows)
        main_name, second = (one_experiment(partner) if partner is not None else None), experiment
    sources = (
        f"C1–C3 from the cells of `{main_name}`; "
        + (f"C4 from `{second}` against `{main_name}`." if second and main_name else "C4 needs both experiments.")
        if main_name
        else "C1–C3 need a main-like experiment of the same setup."
    )
    fresh = None if fresh_csv is None else confirmed.section(ours, fresh_csv, test_csv, margin, cells, partner)
    md = vs_talk_markdown(experiment, reference_experiment, comparison, ours, talk, sources, fresh)
    overall = agreement(comparison).iloc[-1].to_dict()
    comparison_figure(comparison, overall, f"{experiment} vs the talk ({reference_experiment})", out_png, out_pdf)
    files.write_text(out_csv, comparison_csv(comparison))
    files.write_text(out_md, md)
