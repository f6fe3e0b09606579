"""All figures of one experiment, drawn from its cells' metrics.json (the figures job's work)."""

from __future__ import annotations

from genboost.figures import (
    best_configurations,
    heatmap_grid,
    learning_curves,
    lr_curves,
    mean_curve,
    nothing_to_plot,
)
from genboost.measures_figure import measures_against_test_mse
from genboost.tables import cells_frame, measure_columns, read_records


def write_figures(experiment: str, metrics_paths: list[str], paths: dict[str, str]) -> None:
    """One experiment's figures from its cells' metrics.json (read here, not from cells.csv, so that the
    figures job runs beside the aggregate job instead of after it)."""
    records = read_records(metrics_paths)
    cells = cells_frame(experiment, records)
    heatmap_grid(cells, paths["heatmap_png"], paths["heatmap_pdf"], title=f"{experiment}: mean test MSE over seeds")
    lr_curves(cells, paths["lr_curves_png"], paths["lr_curves_pdf"], title=f"{experiment}: test MSE against lr")
    if "measures_png" in paths:
        measures = measure_columns(cells)
        title = f"{experiment}: measures of the trained models against test MSE"
        if measures:
            measures_against_test_mse(cells, measures, paths["measures_png"], paths["measures_pdf"], title=title)
    if "learning_curves_png" not in paths:
        return
    curves = []
    for best in best_configurations(cells):
        keys = ("optimizer", "lr", "wd", "rho")
        seeds = [r for r in records if all(r["config"][k] == best[k] for k in keys) and r.get("curve")]
        if seeds:
            curves.append(mean_curve(best["label"], seeds))
    learning_curves(
        curves,
        paths["learning_curves_png"],
        paths["learning_curves_pdf"],
        title=f"{experiment}: learning curves of the best configurations (mean over seeds)",
        note=nothing_to_plot(cells),
    )
