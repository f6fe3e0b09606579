"""One measure job: the measures of a train job's models, from their weights in the store, into measures.json.

Each model is found by its metrics.json's `store_key`; it is measured on the training set it was trained on (its
dtype, its labels permuted for a random-label cell), on the CPU. Every measure runs on its own setting of
`analysis` (`genboost.measures.registry` says which, under which columns, and when it is off): SAM-ascent
sharpness at `sharpness_radii`, the top Hessian eigenvalue with `hessian_iters`, the PAC-Bayes measures, weight
norm and distance from initialization with `pacbayes`. A diverged model gets null for every measure. The
numbers do not depend on which models are measured together (`genboost.measures.pacbayes` draws each model's
noise from its own seed).

A model with a norm (config key model.norm: layer) gets every measure: they all run the model's one forward pass
(`genboost.train.model.forward`), and take its norm's gains and biases as parameters like every W and b (its
weight norm and distance from initialization, gain 1 and bias 0 at init, included). Note that a normed layer's
output does not depend on its W's scale, so its weight norm says less about the function than a plain model's.
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
    store = CellStore(Path(job.results) / "store")
    params = [stored_weights(store, r, p) for r, p in zip(records, job.metrics, strict=True)]
    norms = [stored_norm_weights(store, r) if c.normed else [] for r, c in zip(records, cells, strict=True)]
    diverged = [bool(r["diverged"]) for r in records]
    found = [one_model(p, n, split, bad, job.analysis) for p, n, bad in zip(params, norms, diverged, strict=True)]
    if registry.setting(job.analysis, registry.PACBAYES) is not None:
        blocks = block_measures(cells, params, norms, diverged, split, job.analysis)
        for values, more in zip(found, blocks, strict=True):
            values.update(more)
    columns = registry.job_columns(job.analysis)
    unknown = {c for values in found for c in values} - set(columns)
    if unknown:  # a value the registry names no column for would be dropped
        raise RuntimeError(f"measure job computed {sorted(unknown)}, not columns of its settings in the registry")
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
    weights = store.get_weights(record["store_key"], config["hidden"], config["dtype"], config.get("norm", "none"))
    if weights is None:
        raise RuntimeError(
            f"{metrics_path}: the store has no weights under its store_key {record['store_key']} "
            f"({store.weights_path(record['store_key'])}); delete this metrics.json and run again to train it"
        )
    return weights


def stored_norm_weights(store: CellStore, record: dict):
    """A norm model's trained gains and biases, from the store entry its metrics.json names (found by
    `stored_weights` before)."""
    config = record["config"]
    return store.get_norm_weights(record["store_key"], config["hidden"], config["dtype"])


def one_model(params, norm_params, split, skip: bool, analysis: dict) -> dict:
    """SAM-ascent sharpness and the top Hessian eigenvalue of one model (`norm_params` its norm's, [] without one),
    each where its setting asks for it; none where `skip` (a diverged model)."""
    radii = registry.setting(analysis, registry.SHARPNESS_RADII) or []
    iters = registry.setting(analysis, registry.HESSIAN_ITERS)
    if skip:
        return {}
    out = {}
    if radii:
        found = sharpness.sam_sharpness(params, split.x_train, split.y_train, radii=radii, norm_params=norm_params)
        out.update({registry.radius_column(r): v for r, v in found.items()})
    if iters is not None:
        out["hessian_top_eig"] = sharpness.top_hessian_eigenvalue(
            params, split.x_train, split.y_train, iters=iters, norm_params=norm_params
        )
    return out


def block_measures(
    cells: list[Cell], params: list, norms: list, diverged: list[bool], split, analysis: dict
) -> list[dict]:
    """The PAC-Bayes measures, weight norm and distance from initialization, the models of one width and norm at once
    (none for a model flagged in `diverged`)."""
    settings = pacbayes.FlatnessSettings(**registry.setting(analysis, registry.PACBAYES))
    inits = pacbayes.initializations(cells, split.x_train.shape[1])
    norm_inits = pacbayes.norm_initializations(cells, split.x_train.shape[1])
    out: list[dict] = [{} for _ in cells]
    for hidden, normed in dict.fromkeys((c.hidden, c.normed) for c in cells):
        idx = [i for i, c in enumerate(cells) if (c.hidden, c.normed) == (hidden, normed)]
        found = pacbayes.block_measures(
            [params[i] for i in idx], [inits[i] for i in idx], split.x_train, split.y_train,
            [diverged[i] for i in idx], settings=settings,
            norm_list=[norms[i] for i in idx] if normed else None, norm_init_list=[norm_inits[i] for i in idx],
        )  # fmt: skip
        for i, values in zip(idx, found, strict=True):
            out[i] = values
    return out


def _finite_or_none(x):
    return x if isinstance(x, (int, float)) and math.isfinite(x) else None
