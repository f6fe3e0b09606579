"""The measures of a trained model, each listed once: its column in measures.json and cells.csv, a label for
figures, what a higher value means, and the setting of config key `analysis` that turns it on.

Every measure is oriented as a complexity measure: higher means sharper (or a larger model), which is
expected to go with higher test error. This registry alone decides what is measured: the config's `analysis`
keys (`SETTINGS`; the schema lists the same, a test keeps them equal), whether a study measures at all
(`measured`), the columns a measure job writes (`job_columns`) and the parts of a setting it stores apart
(`parts`), and the measure columns of tables, the summary's rankings and the figures (`ordered`). A new measure
is added in one place, and a column no entry names is an error, never silently dropped. Most are computed from
the stored weights by the measure jobs (measures.json), each while its setting is on; the per-layer ones
(`per_layer`, no setting) are recorded while training (the record's "layers", `genboost.train.engine._layer_norms`).
Plain values only (no torch): the Snakefile and the analysis layer import this.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# The settings of config key `analysis`, each turning on the measures that name it; a setting is off when
# absent, null or empty (no radii).
SHARPNESS_RADII = "sharpness_radii"  # SAM-ascent sharpness at each radius
HESSIAN_ITERS = "hessian_iters"  # the top Hessian eigenvalue, by power iteration
PACBAYES = "pacbayes"  # the PAC-Bayes flatness measures, weight norm and distance from initialization


@dataclass(frozen=True)
class Measure:
    column: str  # the column; for a measure per radius, its stem: `sharpness_r` gives sharpness_r0.05
    label: str
    higher: str  # what a higher value means
    setting: str | None = None  # its key under `analysis` (the measure job computes it); None: recorded in training
    per_radius: bool = False  # one column per radius of `analysis.sharpness_radii`
    per_layer: bool = False  # one column per hidden layer: weight_norm_l1, weight_norm_l2, ...

    def columns(self, analysis: dict) -> list[str]:
        """The columns a measure job writes of this measure under these `analysis` settings: none where its
        setting is off (and none for a measure recorded in training)."""
        value = setting(analysis, self.setting) if self.setting else None
        if value is None:
            return []
        return [radius_column(r) for r in value] if self.per_radius else [self.column]


MEASURES = (
    Measure(
        "sharpness_r", "SAM-ascent sharpness (loss increase at radius r)", "sharper", SHARPNESS_RADII, per_radius=True
    ),
    Measure("hessian_top_eig", "top Hessian eigenvalue", "sharper", HESSIAN_ITERS),
    Measure("pacbayes_flatness", "PAC-Bayes 1/sigma^2", "sharper", PACBAYES),
    Measure("pacbayes_mag_flatness", "magnitude-aware PAC-Bayes 1/sigma^2", "sharper", PACBAYES),
    Measure("weight_norm", "L2 norm of the weights", "larger", PACBAYES),
    Measure("dist_from_init", "L2 distance from initialization", "larger", PACBAYES),
    Measure("weight_norm_l", "L2 norm of a hidden layer's W", "larger", per_layer=True),
    Measure("eff_lr_l", "effective lr (lr / ||W||^2) of a normed hidden layer", "larger step", per_layer=True),
)
SETTINGS = tuple(dict.fromkeys(m.setting for m in MEASURES if m.setting))  # the keys of `analysis`, in order


def setting(analysis: dict, key: str):
    """The value of an `analysis` setting of the registry, or None where it is off (absent, null or empty)."""
    if key not in SETTINGS:
        raise KeyError(f"{key!r} is not a setting of genboost/measures/registry.py: one of {list(SETTINGS)}")
    value = analysis.get(key)
    return None if value is None or (isinstance(value, (list, tuple, dict)) and not value) else value


def job_columns(analysis: dict) -> list[str]:
    """The columns a measure job with these `analysis` settings writes, in the registry's order (radii ascending)."""
    return ordered(c for m in MEASURES for c in m.columns(analysis))


def parts(analysis: dict, key: str) -> list[tuple[object, list[str]]]:
    """The parts of an `analysis` setting that are measured and stored apart, each with its columns: one per radius
    for a measure per radius (a new radius measures that radius alone), else the whole setting; none when off."""
    value = setting(analysis, key)
    if value is None:
        return []
    measures = [m for m in MEASURES if m.setting == key]
    if any(m.per_radius for m in measures):
        return [(r, [radius_column(r)]) for r in dict.fromkeys(value)]
    return [(value, [m.column for m in measures])]


def measured(analysis: dict) -> bool:
    """Whether the analysis measures anything of the trained models (then each train job has a measure job)."""
    return bool(job_columns(analysis))


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
