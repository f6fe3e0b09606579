"""Figure: each generalization measure against test MSE, one panel per measure, points colored by lr (PNG + PDF).

Built like `genboost.analysis.figures`: a `matplotlib.figure.Figure` rendered by the Agg canvas (no pyplot state), both
files written atomically together by `figures.save`.
"""

from __future__ import annotations

import math

import matplotlib as mpl
import numpy as np
import pandas as pd
from matplotlib.colors import LogNorm
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from genboost.analysis.figures import WIDE_RANGE, save
from genboost.analysis.granulated import TARGET_NAMES, kendall, usable
from genboost.analysis.tables import cells_frame, read_job_records
from genboost.measures import registry

MARKERS = ("o", "^", "s", "D", "v")  # one per optimizer
COLUMNS = 3


def _wide(values: pd.Series) -> bool:
    """Positive values spanning more than WIDE_RANGE: a log axis shows them better."""
    v = values.to_numpy(dtype=float)
    return bool(v.size) and bool(np.all(v > 0)) and v.max() / v.min() > WIDE_RANGE


def write_measures_figure(
    experiment: str, job_paths: list[str], measured_paths: list[str], paths: dict[str, str], sweep=()
) -> None:
    """One experiment's measures figure (the measures figure job's work) from its train and measure jobs' files:
    every recorded measure, with "no values" panels where every model diverged."""
    cells = cells_frame(experiment, read_job_records(job_paths, measured_paths), sweep)
    title = f"{experiment}: measures of the trained models against test MSE"
    measures_against_test_mse(
        cells, registry.ordered(cells.columns), paths["measures_png"], paths["measures_pdf"], title=title
    )


def measures_against_test_mse(
    cells: pd.DataFrame, measures: list[str], path_png, path_pdf, title: str | None = None, target: str = "test_mse"
) -> Figure:
    """One scatter panel per measure (x) against `target` (y) over the models that did not diverge, colored by lr
    on a log scale, one marker per optimizer (points: collections with gid "models"); each panel's title gives
    Kendall's tau over its points."""
    if not measures:
        raise ValueError("measures_against_test_mse: no measures to plot")
    lrs = cells["lr"].astype(float)
    if not (lrs > 0).all():
        raise ValueError(f"measures_against_test_mse: lr must be > 0 for a log color scale, got {sorted(set(lrs))}")
    norm = LogNorm(lrs.min(), lrs.max() if lrs.max() > lrs.min() else lrs.min() * 10)
    optimizers = sorted(cells["optimizer"].unique()) if "optimizer" in cells else [None]
    n_rows = math.ceil(len(measures) / COLUMNS)
    n_cols = min(COLUMNS, len(measures))
    fig = Figure(figsize=(0.6 + 3.4 * n_cols, 0.8 + 2.9 * n_rows), layout="constrained")
    axes = fig.subplots(n_rows, n_cols, squeeze=False, sharey=True)
    for ax, measure in zip(axes.flat, measures, strict=False):
        _panel(ax, usable(cells, measure, target), measure, target, norm, optimizers)
    for ax in list(axes.flat)[len(measures) :]:
        ax.set_visible(False)
    for ax in axes[:, 0]:
        ax.set_ylabel(TARGET_NAMES.get(target, target), fontsize=8)
    fig.colorbar(mpl.cm.ScalarMappable(norm=norm, cmap="viridis"), ax=axes, label="learning rate", shrink=0.9)
    if optimizers != [None]:
        handles = [
            Line2D([], [], marker=m, color="0.4", linestyle="none", label=str(o).upper())
            for o, m in zip(optimizers, MARKERS, strict=False)
        ]
        fig.legend(handles=handles, loc="outside lower center", ncols=len(handles), fontsize=8, frameon=False)
    fig.suptitle(title or f"Generalization measures against {TARGET_NAMES.get(target, target)}", fontsize=11)
    save(fig, path_png, path_pdf)
    return fig


def _panel(ax, models: pd.DataFrame, measure: str, target: str, norm, optimizers) -> None:
    if models.empty:
        ax.text(0.5, 0.5, "no values", ha="center", va="center", transform=ax.transAxes, color="0.4")
    for opt, marker in zip(optimizers, MARKERS, strict=False):
        part = models if opt is None else models[models["optimizer"] == opt]
        ax.scatter(part[measure], part[target], c=part["lr"].astype(float), cmap="viridis", norm=norm,
                   marker=marker, s=14, alpha=0.8, linewidths=0, gid="models")  # fmt: skip
    if _wide(models[measure]):
        ax.set_xscale("log")
    if _wide(models[target]):
        ax.set_yscale("log")
    tau = kendall(models[measure], models[target])
    ax.set_title(f"{measure} (tau {tau:+.2f}, n={len(models)})" if not math.isnan(tau) else measure, fontsize=9)
    known = registry.measure_of(measure)
    ax.set_xlabel(f"{registry.label(measure)} (higher: {known.higher})" if known else measure, fontsize=8)
    ax.grid(True, which="major", alpha=0.3)
