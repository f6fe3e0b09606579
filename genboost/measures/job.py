"""One measure job: the measures of a train job's models, from their weights in the store, into measures.json.

Each model is found by its metrics.json's `store_key`; it is measured on the training set it was trained on (its
dtype, its labels permuted for a random-label cell), on the CPU. Every measure runs on its own setting of
`analysis`: SAM-ascent sharpness at `sharpness_radii` ([]: off), the top Hessian eigenvalue with
`hessian_iters` (null: off), the PAC-Bayes measures, weight norm and distance from initialization with
`pacbayes` (null: off). A diverged model gets null for every measure. The numbers do not depend on which
models are measured together (`genboost.measures.pacbayes` draws each model's noise from its own seed).
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass
from pathlib import Path

from genboost import files
from genboost.measures import pacbayes, registry, sharpness
from genboost.train.model import Cell, cells_split
from genboost.train.store import CellStore

log = logging.getLogger("genboost")


@dataclass(frozen=True)
class MeasureJob:
    """What one measure job needs: its models' metrics.json, the measures.json each goes to, the store, the
    data, and the `analysis` settings; `job_file`, where given, gets every model's measures in that order (what
    the tables and figures read); `train_job`, where given, is read for the records instead of `metrics` (a
    metrics.json a user deleted does not stop the measures)."""

    experiment: str
    metrics: list[str]
    outputs: list[str]
    results: str
    train_csv: str
    test_csv: str
    analysis: dict
    job_file: str | None = None
    train_job: str | None = None  # the train job's file, whose records stand for the metrics.json files


def measure_columns(analysis: dict) -> list[str]:
    """The columns a job with these settings writes, in the registry's order."""
    columns = [registry.radius_column(r) for r in analysis.get("sharpness_radii") or []]
    columns += ["hessian_top_eig"] if analysis.get("hessian_iters") is not None else []
    columns += list(pacbayes.MEASURE_KEYS) if analysis.get("pacbayes") is not None else []
    registry.check_known(columns)
    return registry.ordered(columns)


def run_measure_job(job: MeasureJob) -> None:
    """Write one measures.json per model: {"store_key": its result's key, "measures": column -> value or null}."""
    if len(job.metrics) != len(job.outputs):
        raise RuntimeError(f"measure job has {len(job.outputs)} outputs for {len(job.metrics)} metrics.json")
    if job.train_job:
        records = json.loads(Path(job.train_job).read_text())["cells"]
    else:
        records = [json.loads(Path(p).read_text()) for p in job.metrics]
    if len(records) != len(job.outputs):
        raise RuntimeError(f"measure job has {len(job.outputs)} outputs for {len(records)} trained models")
    cells = [Cell.from_dict(r["config"]) for r in records]
    split = cells_split(cells, job.train_csv, job.test_csv, f"measure job of {job.experiment}")
    params = [
        stored_weights(CellStore(Path(job.results) / "store"), r, p) for r, p in zip(records, job.metrics, strict=True)
    ]
    diverged = [bool(r["diverged"]) for r in records]
    found = [one_model(p, split, bad, job.analysis) for p, bad in zip(params, diverged, strict=True)]
    if job.analysis.get("pacbayes") is not None:
        for values, more in zip(found, block_measures(cells, params, diverged, split, job.analysis), strict=True):
            values.update(more)
    columns = measure_columns(job.analysis)
    measured = [
        {"store_key": record["store_key"], "measures": {c: _finite_or_none(values.get(c)) for c in columns}}
        for record, values in zip(records, found, strict=True)
    ]
    for entry, out in zip(measured, job.outputs, strict=True):
        files.write_json(out, entry)
    if job.job_file:
        files.write_json(job.job_file, {"experiment": job.experiment, "measures": measured})
    log.info("measured %d models: %s", len(records), ", ".join(columns))


def stored_weights(store: CellStore, record: dict, metrics_path: str):
    """A model's trained weights, from the store entry its metrics.json names."""
    config = record["config"]
    weights = store.get_weights(record["store_key"], config["hidden"], config["dtype"])
    if weights is None:
        raise RuntimeError(
            f"{metrics_path}: the store has no weights under its store_key {record['store_key']} "
            f"({store.weights_path(record['store_key'])}); delete this metrics.json and run again to train it"
        )
    return weights


def one_model(params, split, diverged: bool, analysis: dict) -> dict:
    """SAM-ascent sharpness and the top Hessian eigenvalue of one model, each where its setting asks for it."""
    radii, iters = analysis.get("sharpness_radii") or [], analysis.get("hessian_iters")
    if diverged:
        return {}
    out = {}
    if radii:
        found = sharpness.sam_sharpness(params, split.x_train, split.y_train, radii=radii)
        out.update({registry.radius_column(r): v for r, v in found.items()})
    if iters is not None:
        out["hessian_top_eig"] = sharpness.top_hessian_eigenvalue(params, split.x_train, split.y_train, iters=iters)
    return out


def block_measures(cells: list[Cell], params: list, diverged: list[bool], split, analysis: dict) -> list[dict]:
    """The PAC-Bayes measures, weight norm and distance from initialization, the models of one width at once."""
    settings = pacbayes.FlatnessSettings(**analysis["pacbayes"])
    inits = pacbayes.initializations(cells, split.x_train.shape[1])
    out: list[dict] = [{} for _ in cells]
    for hidden in dict.fromkeys(c.hidden for c in cells):
        idx = [i for i, c in enumerate(cells) if c.hidden == hidden]
        found = pacbayes.block_measures(
            [params[i] for i in idx], [inits[i] for i in idx], split.x_train, split.y_train,
            [diverged[i] for i in idx], settings=settings,
        )  # fmt: skip
        for i, values in zip(idx, found, strict=True):
            out[i] = values
    return out


def _finite_or_none(x):
    return x if isinstance(x, (int, float)) and math.isfinite(x) else None
