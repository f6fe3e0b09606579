"""One train job: the cells of a pack, taken from the store where they exist, trained together where not."""

from __future__ import annotations

import logging
import math
import platform
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import partial
from importlib import metadata
from pathlib import Path

import torch

from genboost import files, fingerprint
from genboost.config import study as grid
from genboost.train import checkpoint
from genboost.train.model import Cell
from genboost.train.store import METRIC_KEYS, CellStore, result_key

log = logging.getLogger("genboost")


def resolve_device(setting: str) -> torch.device:
    """auto: CUDA when available, else CPU; cuda on a machine without CUDA is an error, not a silent CPU run."""
    if setting == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if setting == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(
            f"config train.device is 'cuda' but CUDA is not available on {socket.gethostname()} "
            f"(torch {torch.__version__}); use device: auto or cpu, or run this job on a GPU node"
        )
    return torch.device(setting)


def device_description(device: torch.device) -> str:
    if device.type == "cuda":
        return f"cuda:{torch.cuda.get_device_name(device)}"
    return f"cpu:{platform.processor() or platform.machine()}"


def versions() -> dict:
    out = {"python": platform.python_version()}
    for name in ("genboost", "torch", "numpy", "pandas", "scikit-learn", "snakemake"):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def _finite_or_none(x):
    return x if isinstance(x, (int, float)) and math.isfinite(x) else None


def measure_flatness(params, split, diverged: bool, analysis: dict) -> dict:
    """Sharpness and the top Hessian eigenvalue on the training set (CPU, the trained dtype)."""
    from genboost.measures import sharpness

    names = [f"sharpness_r{r:g}" for r in analysis["sharpness_radii"]] + ["hessian_top_eig"]
    if diverged:
        return dict.fromkeys(names)
    radii, iters = analysis["sharpness_radii"], analysis["hessian_iters"]
    out = sharpness.measure(params, split.x_train, split.y_train, radii=radii, iters=iters)
    return {k: out[k] for k in names}


def measure_block(cells: list[Cell], results: list[dict], split, analysis: dict) -> None:
    """Each model's measures on the training set, into its result's "flatness": sharpness and the top Hessian
    eigenvalue one model at a time, the PAC-Bayes measures, norm and distance from init for the block at once."""
    from genboost.measures import pacbayes as measures

    # on the CPU, in the trained dtype: sharpness and measures cast the data to the params' dtype and device
    params = [[(w.cpu(), b.cpu()) for w, b in r.pop("params")] for r in results]
    diverged = [bool(r["diverged"]) for r in results]
    for result, p, bad in zip(results, params, diverged, strict=True):
        result["flatness"] = measure_flatness(p, split, bad, analysis) if analysis["hessian_iters"] else {}
    if analysis["pacbayes"] is not None:
        inits = measures.initializations(cells, split.x_train.shape[1])
        settings = measures.FlatnessSettings(**analysis["pacbayes"])
        found = measures.block_measures(params, inits, split.x_train, split.y_train, diverged, settings=settings)
        for result, values in zip(results, found, strict=True):
            result["flatness"].update(values)


def make_record(cell: Cell, result: dict, provenance: dict) -> dict:
    """The metrics.json of one cell: its numbers, its full config and where they came from."""
    measured = [result[k] for k in METRIC_KEYS if result[k] is not None]  # no accuracy for a numeric label
    diverged = bool(result["diverged"]) or not all(math.isfinite(v) for v in measured)
    record = {k: _finite_or_none(result[k]) for k in METRIC_KEYS}
    record.update(
        diverged=diverged,
        diverged_step=result["diverged_step"],
        epochs=cell.epochs,
        steps=result["steps"],
        config=cell.to_dict(),
        **provenance,
    )
    if "flatness" in result:
        record["flatness"] = {k: _finite_or_none(v) for k, v in result["flatness"].items()}
    if "curve" in result:
        record["curve"] = [
            {k: _finite_or_none(v) if k != "epoch" else v for k, v in p.items()} for p in result["curve"]
        ]
    return record


@dataclass(frozen=True)
class TrainJob:
    """What one train job needs: its cells, the files they go to, the data, and how to train them.

    `analysis` (config key analysis): curve_every, sharpness_radii, hessian_iters; what is measured
    besides the metrics is part of a result's identity in the store. `prefixes` maps a cell to a shorter
    run of it whose end state, where the store has it, the cell goes on from (`genboost.train.resume`); the
    end states of the cells in `keep_state` are stored for longer runs. `code`, the fingerprint of the code
    that runs (`fingerprint.check_running_code`), keys the store; by default that of this module and its imports.
    """

    experiment: grid.Experiment
    cells: list[Cell]
    outputs: list[str]
    results: str
    train_csv: str
    test_csv: str
    threads: int = 1
    analysis: dict | None = None
    prefixes: dict[Cell, Cell] = field(default_factory=dict)
    keep_state: set[Cell] | frozenset = frozenset()
    code: str | None = None

    @property
    def settings(self) -> dict:
        """The analysis settings, defaults filled in."""
        return {**grid.ANALYSIS_DEFAULTS, **(self.analysis or {})}

    def output_of(self) -> dict[Cell, str]:
        """Each cell's metrics.json: the outputs are in the order of the cells (genboost.wiring.job_params)."""
        if len(self.outputs) != len(self.cells):
            raise RuntimeError(f"train job has {len(self.outputs)} outputs for {len(self.cells)} cells")
        return dict(zip(self.cells, self.outputs, strict=True))


def run_train_job(job: TrainJob) -> tuple[int, int]:
    """Write one metrics.json per cell, from the store where it has the cell's result; returns (trained, reused)."""
    paths = job.output_of()
    torch.set_num_threads(job.threads)
    device = resolve_device(job.experiment.device)
    context = store_context(job, device)
    store = CellStore(Path(job.results) / "store")
    keys = {c: result_key(c.to_dict(), context) for c in job.cells}
    records = look_up(store, keys, job.settings)
    missing = [c for c in job.cells if records[c] is None]
    log.info("job of %d cells: %d in the store, %d to train on %s", len(job.cells), len(job.cells) - len(missing),
             len(missing), device)  # fmt: skip
    if missing:
        records.update(train_and_store(job, missing, store, keys, device, context))
    for cell in job.cells:
        files.write_json(paths[cell], records[cell])
    log.info("trained %d, reused %d", len(missing), len(job.cells) - len(missing))
    return len(missing), len(job.cells) - len(missing)


def store_context(job: TrainJob, device: torch.device) -> dict:
    """What determines a result besides the cell's config: the other half of its store key."""
    return {
        "data_sha256": files.sha256_file(job.train_csv) + files.sha256_file(job.test_csv),
        "code": job.code or fingerprint.script_fingerprint(__file__, fingerprint.PACKAGE_DIR),
        "torch": torch.__version__,
        "device_type": device.type,
        "analysis": job.settings,
    }


def look_up(store: CellStore, keys: dict[Cell, str], analysis: dict) -> dict[Cell, dict | None]:
    """Each cell's stored record, None where the store has no whole result of that very cell."""
    required = [
        k for k, on in (("curve", analysis["curve_every"] is not None), ("flatness", grid.measured(analysis))) if on
    ]
    return {cell: store.get(key, cell.to_dict(), required) for cell, key in keys.items()}


def train_and_store(
    job: TrainJob, cells: list[Cell], store: CellStore, keys: dict[Cell, str], device: torch.device, context: dict
) -> dict[Cell, dict]:
    """Train the cells, each block's results stored as soon as it is done (an interrupted job keeps the blocks
    it finished); returns their records."""
    split = load_split(job, cells)
    starts = start_states(store, cells, job.prefixes, context, split)
    about = provenance(job.threads, device, context)
    records = {}
    for idx, results, wall in measured_blocks(job, cells, split, starts, device):
        block = [cells[i] for i in idx]
        for cell, result in zip(block, results, strict=True):
            state = result.pop("state", None)
            if cell in job.keep_state and state is not None and not result["diverged"]:
                store.put_state(keys[cell], state)
        timing = {"wall_s": wall / len(block), "pack_wall_s": wall, "pack_size": len(block)}
        for i, cell, result in zip(idx, block, results, strict=True):
            resumed = {"resumed_from_epoch": starts[i]["epoch"] if starts[i] else None}
            records[cell] = store.put(keys[cell], make_record(cell, result, {**about, **timing, **resumed}))
    return records


def measured_blocks(
    job: TrainJob, cells: list[Cell], split, starts: list, device: torch.device
) -> Iterator[tuple[list[int], list[dict], float]]:
    """`engine.train_blocks` with the progress logged and the flatness measured per block; yields each block's
    (positions in `cells`, results, seconds it took)."""
    from genboost.train import engine  # imported here: dry runs and tests of the wiring stay light

    analysis = job.settings
    flatness = grid.measured(analysis)
    progress = ProgressLog(len(cells))
    blocks = engine.train_blocks(
        cells, split, device=str(device), curve_every=analysis["curve_every"], return_params=flatness,
        progress=progress.update, start_states=starts, return_state=any(c in job.keep_state for c in cells),
    )  # fmt: skip
    start = time.perf_counter()
    for idx, results in blocks:
        if flatness:
            measure_block([cells[i] for i in idx], results, split, analysis)
        progress.finish_block(len(idx))
        yield idx, results, time.perf_counter() - start
        start = time.perf_counter()


def load_split(job: TrainJob, cells: list[Cell]):
    """The job's data in its cells' dtype (float64 cells see the CSV's float64 values), the training labels
    permuted for a random-label job."""
    from genboost.data import tensors
    from genboost.train.model import torch_dtype

    for name in ("dtype", "shuffle_labels"):
        values = {getattr(c, name) for c in cells}
        if len(values) > 1:
            raise RuntimeError(f"train job of {job.experiment.name} mixes cells of {name} {sorted(values)}")
    split = tensors.load_split(job.train_csv, job.test_csv, dtype=torch_dtype(cells[0].dtype))
    return split.with_shuffled_labels() if cells[0].shuffle_labels else split


def provenance(threads: int, device: torch.device, context: dict) -> dict:
    """Where a trained record's numbers came from."""
    return {
        "threads": threads,
        "device": device_description(device),
        "host": socket.gethostname(),
        "versions": versions(),
        "code_fingerprint": context["code"],
        "data_sha256": context["data_sha256"],
    }


def start_states(store: CellStore, cells: list[Cell], prefixes: dict[Cell, Cell], context: dict, split) -> list:
    """Per cell, the stored end state of its shorter run where it fits the cell, else None (then it trains
    from the start)."""

    states = []
    for cell in cells:
        prefix, check = prefixes.get(cell), partial(checkpoint.state_problem, cell, split=split)
        states.append(store.get_state(result_key(prefix.to_dict(), context), check) if prefix else None)
    found = [s for s in states if s is not None]
    if found:
        log.info(
            "%d of them go on from the end of a shorter run (epoch %s): same numbers, less work",
            len(found),
            "/".join(sorted({str(s["epoch"]) for s in found})),
        )
    return states


class ProgressLog:
    """Logs cells done, epoch and an ETA, at most every `every` seconds."""

    def __init__(self, total_cells: int, every: float = 5.0):
        self.total, self.done, self.every = total_cells, 0, every
        self.start = self.last = time.perf_counter()
        self.first_epoch = None  # of the current block: a block that goes on from a shorter run starts later

    def update(self, block_cells: int, epoch: int, epochs: int) -> None:
        now = time.perf_counter()
        if self.first_epoch is None:
            self.first_epoch = epoch - 1
        if now - self.last < self.every:
            return
        self.last = now
        share = (epoch - self.first_epoch) / max(epochs - self.first_epoch, 1)
        frac = (self.done + block_cells * share) / self.total
        eta = f"{(now - self.start) * (1 - frac) / frac:.0f}s" if frac > 0 else "unknown"
        log.info(
            "cells done %d/%d, epoch %d/%d of the current block, elapsed %.0fs, ETA %s",
            self.done, self.total, epoch, epochs, now - self.start, eta,
        )  # fmt: skip

    def finish_block(self, block_cells: int) -> None:
        self.done += block_cells
        self.first_epoch = None
