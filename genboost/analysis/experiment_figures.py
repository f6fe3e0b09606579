"""The figures of one experiment drawn from its train jobs' files alone (the figures job's work): the heatmap, the
lr curves and the learning curves. The measures figure, which also reads the measure jobs' files, is its own job
(`genboost.analysis.measures_figure`), so that a new measure setting redraws it alone."""

from __future__ import annotations

from genboost.analysis.figures import (
    best_configurations,
    heatmap_grid,
    learning_curves,
    lr_curves,
    mean_curve,
    nothing_to_plot,
)
from genboost.analysis.tables import cells_frame, read_job_records
from genboost.config.study import CONFIG_AXES, fmt_value
from genboost.config.sweep import config_level


def write_figures(experiment: str, job_paths: list[str], paths: dict[str, str], sweep=()) -> None:
    """One experiment's figures from its train jobs' files (read here, not from cells.csv, so that the figures job
    runs beside the measure and aggregate jobs instead of after them); `sweep`: its swept settings."""
    records = read_job_records(job_paths)
    cells = cells_frame(experiment, records, sweep)
    heatmap_grid(cells, paths["heatmap_png"], paths["heatmap_pdf"], title=f"{experiment}: mean test MSE over seeds")
    lr_curves(cells, paths["lr_curves_png"], paths["lr_curves_pdf"], title=f"{experiment}: test MSE against lr")
    if "learning_curves_png" not in paths:
        return
    curves = []
    for best in best_configurations(cells):
        seeds = [r for r in records if _is_configuration(r["config"], best) and r.get("curve")]
        if seeds:
            curves.append(mean_curve(best["label"], seeds))
    learning_curves(
        curves,
        paths["learning_curves_png"],
        paths["learning_curves_pdf"],
        title=f"{experiment}: learning curves of the best configurations (mean over seeds)",
        note=nothing_to_plot(cells),
    )


def _is_configuration(config: dict, best: dict) -> bool:
    """Whether a metrics.json's config is a seed of the configuration `best` (`best_configurations`)."""
    if any(config[k] != best[k] for k in CONFIG_AXES):
        return False
    return all(fmt_value(k, config_level(config, k)) == fmt_value(k, v) for k, v in best["levels"].items())
