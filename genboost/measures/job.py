"""One measure job: the measures of some train jobs' models, from their weights in the store, into measures.json.

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
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from genboost import files, fingerprint
from genboost.measures import pacbayes, registry, sharpness
from genboost.measures.store import MeasureStore, measure_key
from genboost.train.model import Cell, cells_split
from genboost.train.store import CellStore

log = logging.getLogger("genboost")


@dataclass(frozen=True)
class MeasureJob:
    """What one measure job needs: its models' metrics.json, the measures.json each goes to, the store, the
    data, and the `analysis` settings; `job_file`, where given, gets every model's measures in that order (what
    the tables and figures read); `train_jobs`, where given, are read for the records instead of `metrics`, in
    their order (a metrics.json a user deleted does not stop the measures)."""

    experiment: str
    metrics: list[str]
    outputs: list[str]
    results: str
    train_csv: str
    test_csv: str
    analysis: dict
    job_file: str | None = None
    train_jobs: list[str] | None = None  # the train jobs' files, whose records stand for the metrics.json files


@dataclass(frozen=True)
class Model:
    """One model as its measures see it: its cell, whether it diverged, and its trained weights (`norm_params` its
    norm's gains and biases, [] without a norm)."""

    cell: Cell
    diverged: bool
    params: list
    norm_params: list


@dataclass(frozen=True)
class Computation:
    """How one measure (a setting of the registry) is computed: `run(function, models, split, values)` gives each
    model's column -> value for these values of its setting (`registry.parts`), through `function`, the function of
    the measure's own module that computes the numbers. That module, with what it imports, keys the stored values
    (`code`); this job's bookkeeping (what it looks up, how it groups, what it logs) keys none, as in the train jobs."""

    function: Callable
    run: Callable

    def code(self) -> str:
        module = "/".join(self.function.__module__.split(".")[1:]) + ".py"
        return fingerprint.modules_fingerprint([module], fingerprint.PACKAGE_DIR)


def run_measure_job(job: MeasureJob) -> dict[str, tuple[int, int]]:
    """Write one measures.json per model: {"store_key": its result's key, "measures": column -> value or null};
    returns, per measure it runs, how many models it measured and how many it took from the store."""
    models = JobModels(job)
    found: list[dict] = [{} for _ in models.records]
    counts = {}
    for name in registry.SETTINGS:
        if registry.parts(job.analysis, name):
            counts[name] = measure(name, models, found)
            log.info("%s: measured %d, reused %d", name, *counts[name])
    columns = registry.job_columns(job.analysis)
    measured = [
        {"store_key": record["store_key"], "measures": {c: values.get(c) for c in columns}}
        for record, values in zip(models.records, found, strict=True)
    ]
    for entry, out in zip(measured, job.outputs, strict=True):
        files.write_json(out, entry)
    if job.job_file:
        files.write_json(job.job_file, {"experiment": job.experiment, "measures": measured})
    log.info("wrote the measures of %d models: %s", len(measured), ", ".join(columns))
    return counts


def measure(name: str, models: JobModels, found: list[dict]) -> tuple[int, int]:
    """Add one measure's values of every model to `found`, from the store where it has them, else computed and
    stored; returns (models measured, models whose values all came from the store)."""
    store, computation = MeasureStore(models.store.root), COMPUTATIONS[name]
    parts, code = registry.parts(models.job.analysis, name), computation.code()
    missing: dict[tuple[int, ...], list[int]] = {}  # the parts a model lacks -> those models
    for i, record in enumerate(models.records):
        lacking = []
        for j, (value, columns) in enumerate(parts):
            key = measure_key(record["store_key"], name, value, code)
            values = store.get_values(key, record["store_key"], name, value, columns)
            found[i].update(values or {})
            lacking += [] if values is not None else [j]
        if lacking:
            missing.setdefault(tuple(lacking), []).append(i)
    for lacking, idx in missing.items():
        values = [parts[j][0] for j in lacking]
        computed = computation.run(computation.function, [models.model(i) for i in idx], models.split, values)
        for i, out in zip(idx, computed, strict=True):
            unknown = set(out) - {c for j in lacking for c in parts[j][1]}
            if unknown:  # a value the registry names no column for would be dropped
                raise RuntimeError(f"measure {name} computed {sorted(unknown)}, not columns of it in the registry")
            weights = models.records[i]["store_key"]
            for value, columns in (parts[j] for j in lacking):
                part = {c: _finite_or_none(out.get(c)) for c in columns}
                store.put_values(measure_key(weights, name, value, code), weights, name, value, part)
                found[i].update(part)
    measured = sum(len(idx) for idx in missing.values())
    return measured, len(models.records) - measured


class JobModels:
    """A measure job's models: their records, and their weights and training set read when first measured (a job
    that finds every measure stored reads neither)."""

    def __init__(self, job: MeasureJob):
        if len(job.metrics) != len(job.outputs):
            raise RuntimeError(f"measure job has {len(job.outputs)} outputs for {len(job.metrics)} metrics.json")
        if job.train_jobs:
            self.records = [r for path in job.train_jobs for r in json.loads(Path(path).read_text())["cells"]]
        else:
            self.records = [json.loads(Path(p).read_text()) for p in job.metrics]
        if len(self.records) != len(job.outputs):
            raise RuntimeError(f"measure job has {len(job.outputs)} outputs for {len(self.records)} trained models")
        self.job, self.store = job, CellStore(Path(job.results) / "store")
        self.cells = [Cell.from_dict(r["config"]) for r in self.records]
        self._models: dict[int, Model] = {}

    @cached_property
    def split(self):
        return cells_split(self.cells, self.job.train_csv, self.job.test_csv, f"measure job of {self.job.experiment}")

    def model(self, i: int) -> Model:
        if i not in self._models:
            record, cell = self.records[i], self.cells[i]
            params = stored_weights(self.store, record, self.job.metrics[i])
            norms = stored_norm_weights(self.store, record) if cell.normed else []
            self._models[i] = Model(cell, bool(record["diverged"]), params, norms)
        return self._models[i]


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


def sam_sharpness(function, models: list[Model], split, radii: list[float]) -> list[dict]:
    """SAM-ascent sharpness of each model at these radii; none for a diverged model."""
    out = []
    for m in models:
        found = {} if m.diverged else function(m.params, split.x_train, split.y_train, radii, m.norm_params)
        out.append({registry.radius_column(r): v for r, v in found.items()})
    return out


def top_hessian_eigenvalue(function, models: list[Model], split, values: list) -> list[dict]:
    """The top Hessian eigenvalue of each model, by `values`' one number of power iterations; none for a diverged
    model."""
    (iters,) = values
    x, y = split.x_train, split.y_train
    return [{} if m.diverged else {"hessian_top_eig": function(m.params, x, y, iters=iters, norm_params=m.norm_params)}
            for m in models]  # fmt: skip


def pacbayes_measures(function, models: list[Model], split, values: list) -> list[dict]:
    """The PAC-Bayes measures, weight norm and distance from initialization at `values`' one setting, the models of
    one width and norm at once (none for a diverged model)."""
    (setting,) = values
    settings = pacbayes.FlatnessSettings(**setting)
    cells = [m.cell for m in models]
    inits = pacbayes.initializations(cells, split.x_train.shape[1])
    norm_inits = pacbayes.norm_initializations(cells, split.x_train.shape[1])
    out: list[dict] = [{} for _ in cells]
    for hidden, normed in dict.fromkeys((c.hidden, c.normed) for c in cells):
        idx = [i for i, c in enumerate(cells) if (c.hidden, c.normed) == (hidden, normed)]
        found = function(
            [models[i].params for i in idx], [inits[i] for i in idx], split.x_train, split.y_train,
            [models[i].diverged for i in idx], settings=settings,
            norm_list=[models[i].norm_params for i in idx] if normed else None,
            norm_init_list=[norm_inits[i] for i in idx],
        )  # fmt: skip
        for i, values in zip(idx, found, strict=True):
            out[i] = values
    return out


# Each setting of the registry's measures, computed through its measure module's function.
COMPUTATIONS = {
    registry.SHARPNESS_RADII: Computation(sharpness.sam_sharpness, sam_sharpness),
    registry.HESSIAN_ITERS: Computation(sharpness.top_hessian_eigenvalue, top_hessian_eigenvalue),
    registry.PACBAYES: Computation(pacbayes.block_measures, pacbayes_measures),
}


def _finite_or_none(x):
    return x if isinstance(x, (int, float)) and math.isfinite(x) else None
