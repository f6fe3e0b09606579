"""The measures of a trained model, each listed once: its column in measures.json and cells.csv, a label for
figures and what a higher value means.

Every measure is oriented as a complexity measure: higher means sharper (or a larger model), which is
expected to go with higher test error. Tables, the summary's rankings and the figures take the measures from
here, so a new measure is added in one place, and a column no entry names is an error, never silently dropped.
Most are computed from the stored weights by the measure jobs (measures.json); the per-layer ones (`per_layer`)
are recorded while training (the record's "layers", `genboost.train.engine._layer_norms`). Plain values only
(no torch): the analysis layer imports this.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Measure:
    column: str  # the column; for a measure per radius, its stem: `sharpness_r` gives sharpness_r0.05
    label: str
    higher: str  # what a higher value means
    per_radius: bool = False  # one column per radius of `analysis.sharpness_radii`
    per_layer: bool = False  # one column per hidden layer: weight_norm_l1, weight_norm_l2, ...


MEASURES = (
    Measure("sharpness_r", "SAM-ascent sharpness (loss increase at radius r)", "sharper", per_radius=True),
    Measure("hessian_top_eig", "top Hessian eigenvalue", "sharper"),
    Measure("pacbayes_flatness", "PAC-Bayes 1/sigma^2", "sharper"),
    Measure("pacbayes_mag_flatness", "magnitude-aware PAC-Bayes 1/sigma^2", "sharper"),
    Measure("weight_norm", "L2 norm of the weights", "larger"),
    Measure("dist_from_init", "L2 distance from initialization", "larger"),
    Measure("weight_norm_l", "L2 norm of a hidden layer's W", "larger", per_layer=True),
    Measure("eff_lr_l", "effective lr (lr / ||W||^2) of a normed hidden layer", "larger step", per_layer=True),
)


def radius_column(radius: float) -> str:
    """The column of SAM-ascent sharpness at this radius: sharpness_r0.05."""
    return f"sharpness_r{radius:g}"


def measure_of(column: str) -> Measure | None:
    """The measure a column holds, or None when it holds none."""
    for m in MEASURES:
        if column == m.column or (m.per_radius and re.fullmatch(re.escape(m.column) + r"[0-9.e+-]+", column)):
            return m
        if m.per_layer and re.fullmatch(re.escape(m.column) + r"[1-9][0-9]*", column):
            return m
    return None


def ordered(columns) -> list[str]:
    """The measure columns among `columns`, in the registry's order (radii ascending)."""
    found = [c for c in columns if measure_of(c) is not None]
    rank = {m.column: i for i, m in enumerate(MEASURES)}

    def key(c: str):
        m = measure_of(c)
        return (rank[m.column], float(c[len(m.column) :]) if m.per_radius or m.per_layer else 0.0)

    return sorted(found, key=key)


def label(column: str) -> str:
    """A measure column's label (a radius column names its radius)."""
    m = measure_of(column)
    if m is None:
        raise KeyError(f"{column!r} is not a measure of genboost/measures/registry.py")
    if m.per_layer:
        return f"{m.label}, layer {column[len(m.column) :]}"
    return f"SAM-ascent sharpness, r={column[len(m.column) :]}" if m.per_radius else m.label


def check_known(columns) -> None:
    """Every column a measure of the registry: a measure missing from it would drop out of tables and figures."""
    unknown = [c for c in columns if measure_of(c) is None]
    if unknown:
        raise ValueError(f"measures {unknown} are not in genboost/measures/registry.py: add them there")
