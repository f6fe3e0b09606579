"""Aggregation: per-cell rows, mean-test-MSE tables (rows lr, columns wd) and the study's conclusions."""

from __future__ import annotations

import io
import json
import math
from pathlib import Path

import pandas as pd
from tabulate import tabulate

from genboost import files
from genboost.analysis.formats import sam_label
from genboost.analysis.stats import cell_stats
from genboost.config.cell import AXES
from genboost.config.study import IN_TABLE_AXES, TABLE_AXES, fmt_number, fmt_value
from genboost.config.sweep import config_level
from genboost.measures import registry

CELL_COLUMNS = [
    "experiment", *AXES, "epochs", "steps", "test_mse", "train_mse",
    "test_accuracy", "train_accuracy", "diverged", "diverged_step", "wd_mode", "shuffle_labels", "wall_s", "device",
]  # fmt: skip


def measure_columns(cells: pd.DataFrame) -> list[str]:
    """The measures (genboost.measures.registry) recorded for at least one model, in the registry's order."""
    return [c for c in registry.ordered(cells.columns) if cells[c].notna().any()]


def read_job_records(job_paths: list[str], measured_paths=()) -> list[dict]:
    """Each model's record from its train job's file, with the measures of its measure job's file (the jobs in
    the same order, or none) under "flatness"."""
    records = [r for path in job_paths for r in json.loads(Path(path).read_text())["cells"]]
    measured = [(m, path) for path in measured_paths for m in json.loads(Path(path).read_text())["measures"]]
    return with_measures(records, [m for m, _ in measured], [path for _, path in measured])


def with_measures(records: list[dict], measured: list[dict], sources: list[str]) -> list[dict]:
    """The records with each one's measures (`measured`, read from `sources`, in the same order, or none)."""
    if measured:
        if len(measured) != len(records):
            raise ValueError(f"measures of {len(measured)} models for {len(records)} models' metrics")
        for record, entry, path in zip(records, measured, sources, strict=True):
            if entry.get("store_key") != record.get("store_key"):
                raise ValueError(f"{path} measures store_key {entry.get('store_key')}, not its metrics.json's")
            registry.check_known(entry["measures"])
            record["flatness"] = entry["measures"]
    return records


def cells_frame(experiment: str, records: list[dict], sweep=()) -> pd.DataFrame:
    """The rows of cells.csv from the cells' metrics.json records; a column after `seed` per swept setting
    (`sweep`: the experiment's swept keys; tuples such as hidden written as in paths, 64x64)."""
    swept = [k for k in sweep if k not in CELL_COLUMNS]
    rows = []
    for record in records:
        cfg = record["config"]
        row = {"experiment": experiment, **{k: cfg.get(k) for k in AXES}}
        row.update({k: _level_text(k, config_level(cfg, k)) for k in swept})
        row.update(wd_mode=cfg.get("wd_mode"), shuffle_labels=bool(cfg.get("shuffle_labels")))
        row.update({k: record.get(k) for k in CELL_COLUMNS if k not in row})
        row.update(record.get("flatness") or {})
        row.update(record.get("layers") or {})  # each hidden layer's weight norm and effective lr, from training
        rows.append(row)
    flatness = sorted({k for r in rows for k in r} - {*CELL_COLUMNS, *swept})
    columns = CELL_COLUMNS[: CELL_COLUMNS.index("seed") + 1] + swept + CELL_COLUMNS[CELL_COLUMNS.index("seed") + 1 :]
    df = pd.DataFrame(rows, columns=[*columns, *flatness])
    for col in ("test_mse", "train_mse", "test_accuracy", "train_accuracy", *flatness):
        df[col] = df[col].astype(float)
    df.insert(df.columns.get_loc("train_mse") + 1, "gap", df["test_mse"] - df["train_mse"])
    order = [*TABLE_AXES, *swept, *IN_TABLE_AXES, AXES[-1]]  # a table's cells together, then by seed
    return df.sort_values(order, kind="stable").reset_index(drop=True)


def _level_text(key: str, value):
    """A swept value as cells.csv holds it: lists (hidden, adam_betas) as their path text, others as they are."""
    return fmt_value(key, value) if isinstance(value, (list, tuple)) else value


def with_relative_mse(cells: pd.DataFrame, test_label_variance: float | None) -> pd.DataFrame:
    """cells.csv's rows with `test_mse_rel` after test_mse: the test MSE divided by the variance of the test labels
    (genboost.data.splits.label_variance), i.e. 1 - R^2 on the test set. 1 is what predicting the test labels'
    own mean scores, 0 a perfect fit, on any dataset's scale, so that datasets read side by side. The test labels'
    variance rather than the training labels': numerator and denominator then describe the same rows, and the
    random-label control, which permutes only the training labels, keeps the same denominator. NaN when the
    variance is not given."""
    out = cells.copy()
    variance = math.nan if test_label_variance is None else float(test_label_variance)
    relative = out["test_mse"] / variance if variance > 0 else math.nan  # constant labels: nothing to explain
    out.insert(out.columns.get_loc("test_mse") + 1, "test_mse_rel", relative)
    return out


def experiment_cells(
    experiment: str, job_paths: list[str], sweep=(), measured_paths=(), test_label_variance: float | None = None
) -> pd.DataFrame:
    """An experiment's cells.csv rows (`cells_frame` with test_mse_rel) from its train jobs' files and, where
    given, its measure jobs' files (in the same order; none: the rows without the measures' columns)."""
    records = read_job_records(job_paths, measured_paths)
    return with_relative_mse(cells_frame(experiment, records, sweep), test_label_variance)


def cells_csv_text(cells: pd.DataFrame) -> str:
    """cells.csv's text: full precision, so that its numbers round-trip."""
    return cells.to_csv(index=False)


def as_read_back(cells: pd.DataFrame) -> pd.DataFrame:
    """Rows as `pd.read_csv` gives them back from cells.csv: a reader built on the file (the comparison with the
    talk) gets the same frame, dtypes included (an all-missing column as float, not object; a column of ints with
    a missing value as float), as one built on the job files, which so stays free of the measure jobs."""
    return pd.read_csv(io.StringIO(cells_csv_text(cells)))


def cell_means(cells: pd.DataFrame, intervals: bool = True) -> pd.DataFrame:
    """`stats.cell_stats` of test MSE (n as `seeds`) plus the mean train MSE; none where a seed diverged."""
    out = cell_stats(cells, intervals=intervals).rename(columns={"n": "seeds"})
    out["train_mean"] = cell_stats(cells, "train_mse", intervals=False)["mean"].to_numpy()
    return out


TABLE_VALUES = ("mean", "std", "ci_low", "ci_high")
INTERVALS = "mean ± std [95% interval] over seeds"


def mse_table(means: pd.DataFrame, optimizer: str, rho: float) -> dict[str, pd.DataFrame]:
    """Tables of one optimizer x rho, rows lr, columns wd: value name (TABLE_VALUES) -> table."""
    sel = means[(means["optimizer"] == optimizer) & (means["rho"] == rho)]
    mean = sel.pivot(index="lr", columns="wd", values="mean").sort_index().sort_index(axis=1)
    return {v: sel.pivot(index="lr", columns="wd", values=v).reindex_like(mean) for v in TABLE_VALUES}


def format_cell(mean: float, std: float, lo: float, hi: float) -> str:
    if math.isnan(mean):
        return "diverged"
    if math.isnan(std):
        return f"{mean:.4f}"
    return f"{mean:.4f} ± {std:.4f} [{lo:.3f}, {hi:.3f}]"


def table_markdown(table: dict[str, pd.DataFrame], title: str) -> str:
    mean = table["mean"]
    headers = ["lr \\ wd", *(fmt_number(w) for w in mean.columns)]
    rows = [
        [fmt_number(lr), *(format_cell(*(table[v].loc[lr, w] for v in TABLE_VALUES)) for w in mean.columns)]
        for lr in mean.index
    ]
    return f"### {title}\n\n" + tabulate(rows, headers=headers, tablefmt="github", disable_numparse=True) + "\n"


def table_csv(table: dict[str, pd.DataFrame]) -> str:
    mean = table["mean"]
    out = pd.DataFrame({"lr": [fmt_number(x) for x in mean.index]})
    for value in TABLE_VALUES:
        for w in mean.columns:
            out[f"{value}_wd={fmt_number(w)}"] = table[value][w].to_numpy()
    return out.to_csv(index=False, float_format="%.6g", na_rep="diverged")


def select(cells: pd.DataFrame, levels: dict[str, str]) -> pd.DataFrame:
    """The cells whose values of these axes have this canonical text."""
    keep = pd.Series(True, index=cells.index)
    for axis, text in levels.items():
        keep &= cells[axis].map(lambda v, axis=axis: fmt_value(axis, v)) == text
    return cells[keep]


def write_experiment_outputs(
    experiment: str,
    job_paths: list[str],
    cells_csv: str,
    tables: dict[str, dict[str, str]],
    sweep=(),
    measured_paths=(),
    test_label_variance: float | None = None,
) -> int:
    """cells.csv plus its tables, from its train jobs' files and, where measured, its measure jobs' files (in the
    same order). `tables`: each table's path -> the values of its cells (axis -> canonical text), as
    genboost.wiring.tables gives them, one .md and one .csv per optimizer x rho x swept values; `sweep`: the
    experiment's swept keys; `test_label_variance`: that of its split's test labels, for cells.csv's
    test_mse_rel. Returns the number of models."""
    cells = experiment_cells(experiment, job_paths, sweep, measured_paths, test_label_variance)
    files.write_text(cells_csv, cells_csv_text(cells))
    computed = {}  # the .md and the .csv of one table share its numbers
    for path, levels in tables.items():
        optimizer, rho = levels["optimizer"], float(levels["rho"])
        key = tuple(levels.items())
        if key not in computed:
            computed[key] = mse_table(cell_means(select(cells, levels)), optimizer, rho)
        table = computed[key]
        swept = "".join(f", {k}={v}" for k, v in levels.items() if k not in TABLE_AXES)
        title = f"{experiment}: {optimizer.upper()}, {sam_label(rho)}{swept}: test MSE, " + INTERVALS
        text = table_markdown(table, title) if path.endswith(".md") else table_csv(table)
        files.write_text(path, text)
    return len(cells)
