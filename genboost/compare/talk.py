"""The summary's section on the talk's four conclusions: where they are checked, confirmed on fresh seeds and as
the grid's seeds judge them, and where they are not checked, with the reason."""

from __future__ import annotations

import pandas as pd

from genboost.analysis.stats import csv_flags, sweep_axes
from genboost.compare import confirmed, matrix


def shuffled_labels(cells: pd.DataFrame) -> pd.Series:
    """Whether each model trained on shuffled labels (`stats.csv_flags`: a gap or any value but True/False is an
    error)."""
    return csv_flags(cells["shuffle_labels"])


def talk_section(
    cells: pd.DataFrame,
    setups: dict[str, str | None],
    datasets: dict[str, dict] | None = None,
    confirmations: dict[str, tuple[pd.DataFrame, float]] | None = None,
) -> list[str]:
    """The talk's four conclusions checked in each setup (an experiment compared with the talk's tables -> its second
    chance, or None) and in each experiment judged on its own cells (-> {"dataset": its dataset, "second_chance":
    its second chance or None}); together `genboost.config.study.Study.talk_experiments`. Confirmed on fresh seeds
    where `confirmations` has the experiment (-> its fresh models' rows and the margin in test MSE), and as the
    grid's seeds judge them (the selection). Always a section: with no such experiment, it says why."""
    datasets = datasets or {}
    head = ["## The talk's conclusions, per setup", ""]
    if not setups and not datasets:
        return [*head, "No experiment to check them on: each continues another, sweeps a setting or trains on "
                "shuffled labels (genboost.config.study.Study.talk_experiments).", ""]  # fmt: skip

    def frames(name: str, second: str | None):
        return cells[cells["experiment"] == name], cells[cells["experiment"] == second] if second else None

    columns = {name: frames(name, second) for name, second in setups.items()}
    titles = {name: name for name in setups} | {n: f"{n} ({d['dataset']} data)" for n, d in datasets.items()}
    other = {titles[n]: frames(n, d.get("second_chance")) for n, d in datasets.items()}
    rule = "the verdicts' rule and each setup's tables beside the talk's: `<experiment>/vs_talk.md`"
    own = (
        " A column of an experiment not compared with the talk's tables judges the talk's conclusions on its own "
        "cells and its own grid; a claim whose side its grid lacks is not testable, and says which side."
        if datasets
        else ""
    )
    how = (
        "Each claim compares the best configuration of one side with the best of the other (best against best, "
        "their test MSE paired by seed); the statistics section below pools every pair of models that differ in "
        "one factor over the grid, so the two can word one effect differently."
    )
    fresh = {
        titles[n]: (*frames(n, s), *confirmations[n], n)
        for n, s in confirmed.seconds(setups, datasets).items()
        if n in (confirmations or {})
    }
    return [
        *head,
        f"See {rule}.{own}",
        "",
        how,
        "",
        *confirmed.matrix(fresh),
        SELECTION if confirmations else SELECTION + NOT_CONFIRMED,
        "",
        matrix.conclusion_matrix(columns, other),
    ]


def unchecked_lines(cells: pd.DataFrame, experiments: list[str], checked: set[str]) -> list[str]:
    """The experiments the talk's conclusions are not checked on and why (a second chance is checked with the run it
    continues, on C4)."""
    lines = []
    for name in (e for e in experiments if e not in checked):
        sub = cells[cells["experiment"] == name]
        why = "trains on shuffled labels" if shuffled_labels(sub).all() else ""
        swept = sweep_axes(sub)
        why = why or (f"sweeps {', '.join(swept)}" if swept else "")
        if why:
            lines.append(f"- Not checked on {name}: it {why}.")
    return lines


# How the matrix of the grid's verdicts is labelled: the verdicts of the seeds that picked the configurations.
SELECTION = "### On the grid's seeds (the selection)"
NOT_CONFIRMED = ": no confirmation on fresh seeds (config key confirm is null)"
