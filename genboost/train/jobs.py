"""One train job: the cells of one part of a pack, taken from the store where they exist, trained together where
not (in blocks: `genboost.train.blocks`)."""

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
from genboost.config.study import Experiment
from genboost.train import checkpoint
from genboost.train.model import Cell, cells_split
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
    # each hidden layer's final weight norm and effective lr (genboost.train.engine._layer_norms): cells.csv columns
    record["layers"] = {k: _finite_or_none(v) for k, v in result.get("layers", {}).items()}
    if "curve" in result:
        record["curve"] = [
            {k: _finite_or_none(v) if k != "epoch" else v for k, v in p.items()} for p in result["curve"]
        ]
    return record


@dataclass(frozen=True)
class TrainJob:
    """What one train job needs: its cells, the files they go to, the data, and how to train them.

    `shorter_runs` maps a cell to a shorter run of it whose end state, where the store has it, the cell goes on
    from (`genboost.train.resume`); the end states of the `continued` cells are stored for longer runs.
    The experiment's `train.curve_every` sets the learning curves' interval. `job_file`, where given, gets every
    cell's record, in the order of `cells`, after their metrics.json: what the tables and figures read.
    """

    experiment: Experiment
    cells: list[Cell]
    outputs: list[str]
    results: str
    train_csv: str
    test_csv: str
    threads: int = 1
    shorter_runs: dict[Cell, Cell] = field(default_factory=dict)
    continued: set[Cell] | frozenset = frozenset()
    job_file: str | None = None

    @property
    def curve_every(self) -> int | None:
        return self.experiment.train.get("curve_every")

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
    records = look_up(store, keys, job.curve_every)
    missing = [c for c in job.cells if records[c] is None]
    log.info("job of %d cells: %d in the store, %d to train on %s", len(job.cells), len(job.cells) - len(missing),
             len(missing), device)  # fmt: skip
    if missing:
        records.update(train_and_store(job, missing, store, keys, device, context))
    for cell in job.cells:
        files.write_json(paths[cell], records[cell])
    if job.job_file:
        files.write_json(job.job_file, {"experiment": job.experiment.name, "cells": [records[c] for c in job.cells]})
    log.info("trained %d, reused %d", len(missing), len(job.cells) - len(missing))
    return len(missing), len(job.cells) - len(missing)


# The code that computes a cell's numbers: the engine with what it imports, and how the data are read. Only
# this code keys a stored result, so editing a job's bookkeeping or logging, the Snakefile or its wiring
# retrains nothing (the Snakefile still checks that a job runs the code it planned with).
RESULT_CODE = ("train/engine.py", "data/tensors.py")


def result_code(package_dir=fingerprint.PACKAGE_DIR) -> str:
    """The fingerprint of the code in RESULT_CODE and what it imports (`fingerprint.modules_fingerprint`)."""
    return fingerprint.modules_fingerprint(RESULT_CODE, package_dir)


def store_context(job: TrainJob, device: torch.device) -> dict:
    """What determines a result besides the cell's config: the other half of its store key."""
    return {
        "data_sha256": files.sha256_file(job.train_csv) + files.sha256_file(job.test_csv),
        "code": result_code(),
        "torch": torch.__version__,
        "device_type": device.type,
        "curve_every": job.curve_every,  # what the record holds besides the numbers
    }


def look_up(store: CellStore, keys: dict[Cell, str], curve_every: int | None) -> dict[Cell, dict | None]:
    """Each cell's stored record, None where the store has no whole result of that very cell with its weights."""
    required = ["curve"] if curve_every is not None else []
    found = {}
    for cell, key in keys.items():
        record = store.get(key, cell.to_dict(), required)
        whole = record is not None and store.get_weights(key, cell.hidden, cell.dtype, cell.norm) is not None
        found[cell] = record if whole else None
    return found


def train_and_store(
    job: TrainJob, cells: list[Cell], store: CellStore, keys: dict[Cell, str], device: torch.device, context: dict
) -> dict[Cell, dict]:
    """Train the cells, each block's results stored as soon as it is done (an interrupted job keeps the blocks
    it finished); returns their records."""
    split = cells_split(cells, job.train_csv, job.test_csv, f"train job of {job.experiment.name}")
    starts = start_states(store, cells, job.shorter_runs, context, split)
    about = provenance(job.threads, device, context)
    records = {}
    for idx, results, wall in logged_blocks(job, cells, split, starts, device):
        block = [cells[i] for i in idx]
        for cell, result in zip(block, results, strict=True):
            # before the record: no record without weights
            store.put_weights(keys[cell], result.pop("params"), result.pop("norm_params", None))
            state = result.pop("state", None)
            if cell in job.continued and state is not None and not result["diverged"]:
                store.put_state(keys[cell], state)
        # the block's time and size: "pack_" is the records' older word for a block, kept as stored records have it
        timing = {"wall_s": wall / len(block), "pack_wall_s": wall, "pack_size": len(block)}
        for i, cell, result in zip(idx, block, results, strict=True):
            resumed = {"resumed_from_epoch": starts[i]["epoch"] if starts[i] else None}
            records[cell] = store.put(keys[cell], make_record(cell, result, {**about, **timing, **resumed}))
    return records


def logged_blocks(
    job: TrainJob, cells: list[Cell], split, starts: list, device: torch.device
) -> Iterator[tuple[list[int], list[dict], float]]:
    """`engine.train_blocks` with the progress logged and each model's weights returned; yields each block's
    (positions in `cells`, results, seconds it took)."""
    from genboost.train import engine  # imported here: dry runs and tests of the wiring stay light

    progress = ProgressLog(len(cells))
    blocks = engine.train_blocks(
        cells, split, device=str(device), curve_every=job.curve_every, return_params=True,
        progress=progress.update, start_states=starts, return_state=any(c in job.continued for c in cells),
    )  # fmt: skip
    start = time.perf_counter()
    for idx, results in blocks:
        progress.finish_block(len(idx))
        yield idx, results, time.perf_counter() - start
        start = time.perf_counter()


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


def start_states(store: CellStore, cells: list[Cell], shorter_runs: dict[Cell, Cell], context: dict, split) -> list:
    """Per cell, the stored end state of its shorter run where it fits the cell, else None (then it trains
    from the start)."""

    states = []
    for cell in cells:
        shorter, check = shorter_runs.get(cell), partial(checkpoint.state_problem, cell, split=split)
        states.append(store.get_state(result_key(shorter.to_dict(), context), check) if shorter else None)
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
