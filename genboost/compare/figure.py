"""Our mean test MSE against the talk's, configuration by configuration (drawn like genboost.analysis.figures)."""

from __future__ import annotations

import matplotlib as mpl
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from genboost.analysis.figures import save
from genboost.analysis.formats import number, panel_title
from genboost.compare.agreement import on_both_sides
from genboost.config.optimizers import NAMES as OPTIMIZERS
from genboost.config.study import TABLE_AXES

# One marker per optimizer of the registry, in its order (sgd, adam: square, circle); "^" for any other.
MARKERS = dict(zip(OPTIMIZERS, ("s", "o", "D", "v"), strict=False))


def _title(name: str, overall: dict) -> str:
    def num(x: float) -> str:
        return number(x, ".3f")

    return (
        f"{name}: Spearman {num(overall['spearman'])}, Pearson {num(overall['pearson'])}, "
        f"mean |ours − talk| {num(overall['mad'])}, {overall['compared']} configurations"
    )


def comparison_figure(comparison: pd.DataFrame, overall: dict, name: str, path_png, path_pdf) -> Figure:
    """Left: ours (y) against the talk's (x) with the line y = x; right: ours - talk against the talk's.

    One color and marker per optimizer x rho; `overall` is the "all" row of `genboost.compare.agreement.agreement`.
    """
    both = on_both_sides(comparison)
    fig = Figure(figsize=(11, 5), layout="constrained")
    ax, ax_diff = fig.subplots(1, 2)
    colors = mpl.colormaps["tab10"].colors
    for i, ((opt, rho), g) in enumerate(both.groupby(list(TABLE_AXES), sort=True)):
        style = dict(color=colors[i % len(colors)], marker=MARKERS.get(opt, "^"), s=22, alpha=0.8)
        ax.scatter(g["talk_mean"], g["ours_mean"], label=panel_title(opt, rho), **style)
        ax_diff.scatter(g["talk_mean"], g["diff"], **style)
    if both.empty:
        ax.text(0.5, 0.5, "no configuration on both sides", ha="center", va="center", transform=ax.transAxes)
    else:
        values = np.concatenate([both["talk_mean"], both["ours_mean"]])
        lims = (float(values.min()), float(values.max()))
        ax.plot(lims, lims, color="0.3", linestyle="--", linewidth=1, label="y = x")
        ax.legend(fontsize=7, loc="upper left")
    ax_diff.axhline(0.0, color="0.3", linestyle="--", linewidth=1)
    ax.set_xlabel("the talk's mean test MSE")
    ax.set_ylabel("our mean test MSE over seeds")
    ax_diff.set_xlabel("the talk's mean test MSE")
    ax_diff.set_ylabel("ours − talk")
    fig.suptitle(_title(name, overall), fontsize=10)
    save(fig, path_png, path_pdf)
    return fig
