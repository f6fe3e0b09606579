"""Figures of the study: test-MSE heatmaps, test MSE against lr, and learning curves (PNG and PDF).

Figures are built on `matplotlib.figure.Figure` and rendered by the Agg canvas without pyplot, so no
global figure state is touched and a returned figure is freed like any object. The PDF carries no
creation date, so the same data give the same bytes. Both files are written atomically, together.
"""

from __future__ import annotations

import math

import matplotlib as mpl
import numpy as np
import pandas as pd
from matplotlib.colors import LogNorm, Normalize
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch, Rectangle

from genboost.analysis.best import best, best_of_each
from genboost.analysis.formats import panel_title as _panel_title
from genboost.analysis.stats import config_columns, is_diverged, sweep_axes
from genboost.analysis.tables import cell_means
from genboost.config.study import AXIS_TYPES, CONFIG_AXES, IN_TABLE_AXES, TABLE_AXES, fmt_number
from genboost.files import atomic_path

WIDE_RANGE = 10.0  # max / min of the values above which a color or y scale is logarithmic
# Significant digits of a heatmap cell's number: the fewest from the first that tell every two neighbouring cells
# with different means apart, at most the last (means closer than that read as equal).
LABEL_DIGITS = range(3, 7)
# A learning curve of at most this many points is drawn with markers: a line through one point draws nothing.
FEW_POINTS = 2
CMAP = "viridis"
DIVERGED_HATCH = "xx"


def save(fig: Figure, path_png, path_pdf) -> None:
    """Both files or neither: renamed into place only once both have rendered."""
    with atomic_path(path_png) as png, atomic_path(path_pdf) as pdf:
        fig.savefig(png, format="png", dpi=150)
        # The PNG's draw placed everything; laying it out again for the PDF would double the time (~1 s a figure).
        fig.set_layout_engine("none")
        fig.savefig(pdf, format="pdf", metadata={"CreationDate": None})


def _one_experiment(cells: pd.DataFrame) -> str:
    names = sorted(cells["experiment"].unique())
    if len(names) != 1:
        raise ValueError(f"figures: expected the cells of one experiment, got {names}")
    return names[0]


def panel_rows(cells: pd.DataFrame) -> list[tuple[str, dict]]:
    """The figures' rows of panels: each optimizer at each combination of the swept settings' values, as
    (optimizer, swept setting -> value); without a sweep, one row per optimizer."""
    axes = sweep_axes(cells)
    combos = cells[["optimizer", *axes]].drop_duplicates().sort_values(["optimizer", *axes])
    return [(row[0], dict(zip(axes, row[1:], strict=True))) for row in combos.itertuples(index=False)]


def _at(frame: pd.DataFrame, optimizer: str, levels: dict) -> pd.DataFrame:
    keep = frame["optimizer"] == optimizer
    for key, value in levels.items():
        keep &= frame[key] == value
    return frame[keep]


def nothing_to_plot(cells: pd.DataFrame) -> str | None:
    """What a figure of these cells says in place of values when none has one: every model diverged, or every
    configuration has a diverged seed (so no mean); None when there is something to plot."""
    bad = is_diverged(cells)
    if bad.all():
        return f"Every model diverged ({len(bad)} of {len(bad)}): nothing to plot"
    if cells.assign(_bad=bad).groupby(config_columns(cells), dropna=False)["_bad"].any().all():
        return f"Every configuration has a diverged seed ({int(bad.sum())} of {len(bad)} models): nothing to plot"
    return None


def _title(fig: Figure, title: str, note: str | None) -> None:
    """The figure's title, with a second line saying why nothing is plotted where that is so."""
    fig.suptitle(f"{title}\n{note}" if note else title, fontsize=11)


def shared_norm(values) -> Normalize:
    """One color scale for all panels: logarithmic when the finite positive values span over WIDE_RANGE."""
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v) & (v > 0)]
    if v.size == 0:
        return Normalize(0.0, 1.0)
    lo, hi = float(v.min()), float(v.max())
    return LogNorm(lo, hi) if hi / lo > WIDE_RANGE else Normalize(lo, hi)


def heatmap_grid(cells: pd.DataFrame, path_png, path_pdf, title: str | None = None) -> Figure:
    """Mean test MSE over seeds: one panel per optimizer (rows) x rho (columns), lr x wd inside.

    One color scale for every panel; a configuration with a diverged seed is hatched (artist gid
    "diverged"), the best configuration is outlined (gid "best"), every value is written in its cell.
    """
    experiment = _one_experiment(cells)
    means = cell_means(cells, intervals=False)
    opts, rhos = panel_rows(cells), sorted(means["rho"].unique())
    lrs, wds = sorted(means["lr"].unique()), sorted(means["wd"].unique())
    norm = shared_norm(means["mean"])
    selections = {(i, j): _at(means[means["rho"] == rho], opt, levels)
                  for i, (opt, levels) in enumerate(opts) for j, rho in enumerate(rhos)}  # fmt: skip
    digits = label_digits([_grid(sel, "mean", lrs, wds) for sel in selections.values()])
    overall = best(means)
    size = (max(6.0, 1.5 + 0.75 * len(wds) * len(rhos)), max(4.0, 1.2 + 0.45 * len(lrs) * len(opts)))
    fig = Figure(figsize=size, layout="constrained")
    axes = fig.subplots(len(opts), len(rhos), squeeze=False, sharex=True, sharey=True)
    for (i, (opt, levels)), (j, rho) in ((a, b) for a in enumerate(opts) for b in enumerate(rhos)):
        ax = axes[i, j]
        sel = selections[i, j]
        image = _heatmap_panel(ax, sel, lrs, wds, norm, overall, digits)
        ax.set_title(_panel_title(opt, rho, levels), fontsize=9)
        ax.set_xlabel("weight decay" if i == len(opts) - 1 else "")
        ax.set_ylabel("learning rate" if j == 0 else "")
    if overall is not None:  # with no mean anywhere, a color scale would show nothing
        fig.colorbar(image, ax=axes, label="mean test MSE (lower is better)", shrink=0.9)
    handles = [Patch(facecolor="0.85", edgecolor="0.4", hatch=DIVERGED_HATCH, label="a seed diverged")]
    if overall is not None:
        handles.append(Patch(facecolor="none", edgecolor="red", linewidth=2, label="best configuration"))
    fig.legend(handles=handles, loc="outside lower center", ncols=2, fontsize=8, frameon=False)
    _title(fig, title or f"{experiment}: mean test MSE", nothing_to_plot(cells))
    save(fig, path_png, path_pdf)
    return fig


def _grid(sel: pd.DataFrame, values: str, lrs, wds) -> pd.DataFrame:
    """One panel's `values`, rows lr, columns wd (NaN where the panel has no such configuration)."""
    return sel.pivot(index="lr", columns="wd", values=values).reindex(index=lrs, columns=wds)


def label_digits(grids: list[pd.DataFrame]) -> int:
    """The significant digits of the heatmap's numbers (LABEL_DIGITS): the fewest at which every two cells side
    by side or one above the other in a panel, both with a mean, that differ in value differ in their text."""
    arrays = [g.to_numpy(dtype=float) for g in grids]
    neighbours = [pair for a in arrays for pair in ((a[:, 1:], a[:, :-1]), (a[1:, :], a[:-1, :]))]
    for digits in LABEL_DIGITS:
        if not any(_same_text(x, y, digits) for x, y in neighbours):
            return digits
    return LABEL_DIGITS[-1]


def _same_text(x: np.ndarray, y: np.ndarray, digits: int) -> bool:
    """Whether some pair of values (x[k], y[k]), both numbers that read differently at the most digits shown (a
    pair alike there reads alike at any), reads the same at `digits`."""
    most = LABEL_DIGITS[-1]
    return any(f"{a:.{most}g}" != f"{b:.{most}g}" and f"{a:.{digits}g}" == f"{b:.{digits}g}"
               for a, b in zip(x.flat, y.flat, strict=True) if not (math.isnan(a) or math.isnan(b)))  # fmt: skip


def _heatmap_panel(ax, sel: pd.DataFrame, lrs, wds, norm: Normalize, best, digits: int):
    grid, diverged = _grid(sel, "mean", lrs, wds), _grid(sel, "diverged", lrs, wds)
    cmap = mpl.colormaps[CMAP].with_extremes(bad="white")
    image = ax.imshow(
        np.ma.masked_invalid(grid.to_numpy(dtype=float)), norm=norm, cmap=cmap, origin="lower", aspect="auto"
    )
    for (y, lr), (x, wd) in ((a, b) for a in enumerate(lrs) for b in enumerate(wds)):
        value, div = grid.loc[lr, wd], diverged.loc[lr, wd]
        if not pd.isna(div) and div > 0:
            ax.add_patch(_box(x, y, facecolor="0.85", edgecolor="0.4", hatch=DIVERGED_HATCH, gid="diverged"))
        elif not math.isnan(value):
            dark = norm(value) < 0.55  # viridis is dark at the low end
            ax.text(
                x, y, f"{value:.{digits}g}", ha="center", va="center", fontsize=7, color="white" if dark else "black"
            )
        if best is not None and best.name in sel.index and (best["lr"], best["wd"]) == (lr, wd):
            ax.add_patch(_box(x, y, facecolor="none", edgecolor="red", linewidth=2, gid="best"))
    ax.set_xticks(range(len(wds)), [fmt_number(w) for w in wds], fontsize=7)
    ax.set_yticks(range(len(lrs)), [fmt_number(lr) for lr in lrs], fontsize=7)
    return image


def _box(x: int, y: int, **style) -> Rectangle:
    return Rectangle((x - 0.5, y - 0.5), 1, 1, **style)


def lr_curves(cells: pd.DataFrame, path_png, path_pdf, title: str | None = None) -> Figure:
    """Test MSE against lr (log x), one line per wd (mean over seeds, min-max band), panels optimizer x rho.

    A configuration with a diverged seed has no point; an 'x' on the panel's top edge marks its lr.
    """
    experiment = _one_experiment(cells)
    opts, (rhos, wds) = panel_rows(cells), (sorted(cells[c].unique()) for c in ("rho", "wd"))
    spread = _seed_spread(cells)
    colors = mpl.colormaps["plasma"](np.linspace(0.0, 0.85, len(wds)))
    fig = Figure(figsize=(max(6.0, 0.5 + 3.2 * len(rhos)), max(4.0, 0.6 + 2.6 * len(opts))), layout="constrained")
    axes = fig.subplots(len(opts), len(rhos), squeeze=False, sharex=True, sharey=True)
    for (i, (opt, levels)), (j, rho) in ((a, b) for a in enumerate(opts) for b in enumerate(rhos)):
        ax = axes[i, j]
        panel = _at(spread[spread.rho == rho], opt, levels)
        for wd, color in zip(wds, colors, strict=True):
            _lr_line(ax, panel[panel.wd == wd], color)
        ax.set_xscale("log")
        ax.set_title(_panel_title(opt, rho, levels), fontsize=9)
        ax.set_xlabel("learning rate" if i == len(opts) - 1 else "")
        ax.set_ylabel("test MSE" if j == 0 else "")
        ax.grid(True, which="major", alpha=0.3)
    lrs = spread["lr"].to_numpy(dtype=float)
    pad = (lrs.max() / lrs.min()) ** 0.05 if lrs.max() > lrs.min() else 2.0  # one lr: autoscale has no range
    axes[0, 0].set_xlim(lrs.min() / pad, lrs.max() * pad)  # shared x: applies to every panel
    finite = spread[["low", "high"]].to_numpy(dtype=float)
    finite = finite[np.isfinite(finite) & (finite > 0)]
    if finite.size and finite.max() / finite.min() > WIDE_RANGE:
        axes[0, 0].set_yscale("log")  # shared y: applies to every panel
    elif not finite.size:
        axes[0, 0].set_yticks([])  # no value: an axis of made-up numbers would mislead
    handles = [Line2D([], [], color=c, label=f"wd={fmt_number(w)}") for w, c in zip(wds, colors, strict=True)]
    handles.append(Line2D([], [], color="0.3", marker="x", linestyle="none", label="a seed diverged"))
    fig.legend(handles=handles, loc="outside lower center", ncols=len(handles), fontsize=8, frameon=False)
    _title(
        fig, title or f"{experiment}: test MSE against lr (mean over seeds, band: min to max)", nothing_to_plot(cells)
    )
    save(fig, path_png, path_pdf)
    return fig


def _seed_spread(cells: pd.DataFrame) -> pd.DataFrame:
    """Per optimizer, rho, swept values, lr, wd: mean, min and max test MSE over seeds, and whether a seed diverged."""
    c = cells.assign(bad=is_diverged(cells))
    g = c.groupby([*TABLE_AXES, *sweep_axes(cells), *IN_TABLE_AXES], sort=True)
    out = g.agg(mean=("test_mse", "mean"), low=("test_mse", "min"), high=("test_mse", "max"), bad=("bad", "any"))
    out.loc[out["bad"], ["mean", "low", "high"]] = math.nan
    return out.reset_index()


def _lr_line(ax, rows: pd.DataFrame, color) -> None:
    ok = rows[~rows["bad"]]
    ax.plot(ok["lr"], ok["mean"], marker="o", markersize=3, color=color, linewidth=1.2)
    ax.fill_between(ok["lr"], ok["low"], ok["high"], color=color, alpha=0.2, linewidth=0)
    bad = rows[rows["bad"]]
    if not bad.empty:
        ax.plot(bad["lr"], [0.97] * len(bad), "x", color=color, transform=ax.get_xaxis_transform(), gid="diverged")


def best_configurations(cells: pd.DataFrame) -> list[dict]:
    """The best configuration (lowest mean test MSE) per optimizer without and with SAM, with a label; its
    swept settings' values under "levels"."""
    axes = sweep_axes(cells)
    means = cell_means(cells, intervals=False)
    out = []
    for (opt, _sam), b in best_of_each(means, [means["optimizer"], means["rho"] > 0]).items():
        levels = {k: b[k] for k in axes}
        label = f"{_panel_title(opt, b['rho'], levels)}, lr={fmt_number(b['lr'])}, wd={fmt_number(b['wd'])}"
        chosen = {**{a: AXIS_TYPES[a](b[a]) for a in CONFIG_AXES}, "label": label}
        out.append({**chosen, "levels": levels})
    return out


def mean_curve(label: str, records: list[dict]) -> dict:
    """{label, epochs, train_mse, test_mse}: the seeds' metrics.json "curve" entries averaged epoch by epoch."""
    curves = [r["curve"] for r in records]
    epochs = [p["epoch"] for p in curves[0]] if curves else []
    if not epochs or any([p["epoch"] for p in c] != epochs for c in curves):
        raise ValueError(f"mean_curve {label!r}: the seeds' curves are empty or cover different epochs")
    mean = {k: np.mean([[p[k] for p in c] for c in curves], axis=0).tolist() for k in ("train_mse", "test_mse")}
    return dict(label=label, epochs=epochs, **mean)


def learning_curves(
    curves: list[dict], path_png, path_pdf, title: str | None = None, note: str | None = None
) -> Figure:
    """Train and test MSE per epoch, one color per curve; curves: [{label, epochs, train_mse, test_mse}].

    With no curve, `note` says why (the panels are drawn empty beneath it); no curve and no note is an error."""
    if not curves and not note:
        raise ValueError("learning_curves: no curves to plot")
    for c in curves:
        n = len(c["epochs"])
        if n == 0 or len(c["train_mse"]) != n or len(c["test_mse"]) != n:
            raise ValueError(f"learning_curves {c.get('label')!r}: epochs, train_mse and test_mse differ in length")
    fig = Figure(figsize=(9, 3.8), layout="constrained")
    axes = fig.subplots(1, 2, sharey=True)
    colors = mpl.colormaps["tab10"](np.arange(len(curves)) % 10)
    for ax, key, name in zip(axes, ("train_mse", "test_mse"), ("train MSE", "test MSE"), strict=True):
        for c, color in zip(curves, colors, strict=True):
            marker = "o" if len(c["epochs"]) <= FEW_POINTS else None
            ax.plot(c["epochs"], c[key], color=color, linewidth=1.2, marker=marker, markersize=4, label=c["label"])
        ax.set_yscale("log")
        ax.set_title(name, fontsize=10)
        ax.set_xlabel("epoch")
        if curves:
            ax.grid(True, which="both", alpha=0.3)
        else:  # no made-up axis numbers on an empty panel
            ax.tick_params(which="both", left=False, bottom=False, labelleft=False, labelbottom=False)
            ax.text(0.5, 0.5, "no curve to plot", transform=ax.transAxes, ha="center", color="0.4", gid="note")
    axes[0].set_ylabel("MSE")
    if curves:
        fig.legend(*axes[0].get_legend_handles_labels(), loc="outside lower center", ncols=2, fontsize=8, frameon=False)
    _title(fig, title or "Learning curves (mean over seeds)", None if curves else note)
    save(fig, path_png, path_pdf)
    return fig
