"""The confirmation stage's files: what each claim part selects on the grid's seeds, and the fresh models.

The selection is the grid's own (genboost.compare.conclusions: the best of each side on the grid's seeds, or where
every configuration of a side has a diverged seed, its fallback pick: genboost.compare.picks); it is written to
`selected.csv`, one row per side of each part whose two sides the grid holds: each configuration's every axis but
its seed in canonical text (the names of its fresh job), its grid mean (a fallback pick's: over its finished seeds),
its grid seeds and how many of them diverged (0 but for a fallback pick). fresh.csv holds those configurations'
models on the fresh seeds, as cells.csv holds the grid's; the verdicts come from them alone
(genboost.compare.confirm_report).
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from genboost import files
from genboost.analysis import tables
from genboost.compare.conclusions import Conclusion, evaluate
from genboost.config.study import CONFIG_AXES, fmt_value
from genboost.data.splits import label_variance

SIDES = ("better", "other")
GRID = ["grid_mean", "grid_seeds", "grid_diverged"]  # each pick on the grid's seeds (`selected`)
COLUMNS = ["conclusion", "part", "claim", "strict", "side", "experiment", *CONFIG_AXES, *GRID]


def selected(grid: list[Conclusion]) -> pd.DataFrame:
    """The rows of selected.csv from the grid's verdicts (`conclusions.evaluate`): a part without both picks (a
    side the grid has no configuration of) has none."""
    rows = []
    for c in grid:
        for i, o in enumerate(c.parts):
            for side, config in zip(SIDES, (o.better, o.other), strict=True):
                if config is None:
                    continue
                axes = {a: fmt_value(a, config[a]) for a in CONFIG_AXES}
                rows.append([c.key, i, o.part.claim, o.part.strict, side, config["experiment"], *axes.values(),
                             float(config["mean"]), int(config["n"]), int(config["diverged"])])  # fmt: skip
    return pd.DataFrame(rows, columns=COLUMNS)


def grid_cells(experiment: str, job_paths: list[str], sweep=()) -> pd.DataFrame:
    """One experiment's grid models from its train jobs' files, as its cells.csv holds them but for the measures
    and test_mse_rel: all a selection reads (each model's test MSE and whether it diverged), there as soon as the
    grid is trained, so the fresh models train while the grid is measured. `sweep`: the experiment's swept keys,
    as its aggregate rule has them."""
    return tables.cells_frame(experiment, tables.read_job_records(job_paths), sweep)


def write_selected(cells: pd.DataFrame, partner_cells: pd.DataFrame | None, out: str) -> None:
    """selected.csv of a main-like experiment (C1-C3 from its cells, C4 from its second chance's against them)."""
    files.write_text(out, selected(evaluate(cells, partner_cells)).to_csv(index=False))


def write_fresh(job_paths: list[str], test_csv: str, out: str) -> None:
    """fresh.csv: the fresh jobs' models as cells.csv has them, test_mse_rel included."""
    frames = [
        tables.cells_frame(json.loads(Path(p).read_text())["experiment"], tables.read_job_records([p]))
        for p in job_paths
    ]
    fresh = pd.concat(frames, ignore_index=True) if frames else tables.cells_frame("", [])
    files.write_text(out, tables.with_relative_mse(fresh, label_variance(test_csv)).to_csv(index=False))
