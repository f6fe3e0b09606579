"""One train job: the cells of a pack, taken from the store where they exist, trained together where not."""

from __future__ import annotations

import logging
import math
import platform
import socket
import time
from importlib import metadata
from pathlib import Path

import torch

from genboost import files, fingerprint, grid
from genboost.model import Cell
from genboost.store import CellStore, result_key

log = logging.getLogger("genboost")
METRIC_KEYS = ("train_mse", "test_mse", "train_accuracy", "test_accuracy")


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
    from genboost import sharpness

    names = [f"sharpness_r{r:g}" for r in analysis["sharpness_radii"]] + ["hessian_top_eig"]
    if diverged:
        return dict.fromkeys(names)
    params = [(w.cpu(), b.cpu()) for w, b in params]  # sharpness casts the data to the params' dtype and device
    radii, iters = analysis["sharpness_radii"], analysis["hessian_iters"]
    out = sharpness.measure(params, split.x_train, split.y_train, radii=radii, iters=iters)
    return {k: out[k] for k in names}


def make_record(cell: Cell, result: dict, provenance: dict) -> dict:
    """The metrics.json of one cell: its numbers, its full config and where they came from."""
    diverged = bool(result["diverged"]) or not all(math.isfinite(result[k]) for k in METRIC_KEYS)
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


def run_train_job(
    experiment: grid.Experiment,
    cells: list[Cell],
    outputs: list[str],
    results: str,
    train_csv: str,
    test_csv: str,
    threads: int = 1,
    analysis: dict | None = None,
    prefixes: dict[Cell, Cell] | None = None,
    keep_state: set[Cell] | frozenset = frozenset(),
    code: str | None = None,
) -> tuple[int, int]:
    """Write one metrics.json per cell; returns (trained, reused).

    `analysis` (config key analysis): curve_every, sharpness_radii, hessian_iters; what is measured
    besides the metrics is part of a result's identity in the store. `prefixes` maps a cell to a shorter
    run of it whose end state, where the store has it, the cell goes on from (`genboost.resume`); the
    end states of the cells in `keep_state` are stored for longer runs. `code`, the fingerprint of the code
    that runs (`fingerprint.check_running_code`), keys the store; by default that of this module and its imports.
    """
    from genboost import data, engine  # imported here: dry runs and tests of the wiring stay light

    analysis = {**grid.ANALYSIS_DEFAULTS, **(analysis or {})}
    curve_every = analysis["curve_every"]
    flatness = analysis["hessian_iters"] is not None

    paths = {c: experiment.metrics_path(results, c) for c in cells}
    if sorted(paths.values()) != sorted(str(Path(o)) for o in outputs):
        raise RuntimeError(f"train job outputs {sorted(outputs)} do not match its cells {sorted(paths.values())}")
    torch.set_num_threads(threads)
    device = resolve_device(experiment.device)
    context = {
        "data_sha256": files.sha256_file(train_csv) + files.sha256_file(test_csv),
        "code": code or fingerprint.script_fingerprint(__file__, fingerprint.PACKAGE_DIR),
        "torch": torch.__version__,
        "device_type": device.type,
        "analysis": analysis,
    }
    store = CellStore(Path(results) / "store")
    keys = {c: result_key(c.to_dict(), context) for c in cells}
    records = {c: store.get(keys[c]) for c in cells}
    missing = [c for c in cells if records[c] is None]
    log.info(
        "job of %d cells: %d in the store, %d to train on %s",
        len(cells),
        len(cells) - len(missing),
        len(missing),
        device,
    )
    if missing:
        split = data.load_split(train_csv, test_csv)
        if any(c.shuffle_labels for c in cells):
            if not all(c.shuffle_labels for c in cells):
                raise RuntimeError("a train job mixes random-label and real-label cells")
            split = split.with_shuffled_labels()
        provenance = {
            "threads": threads,
            "device": device_description(device),
            "host": socket.gethostname(),
            "versions": versions(),
            "code_fingerprint": context["code"],
            "data_sha256": context["data_sha256"],
        }
        starts = _start_states(store, missing, prefixes or {}, context)
        progress = ProgressLog(len(missing))
        # Block by block, each block's results stored at once: an interrupted job keeps what it finished.
        for idx in engine.plan_blocks(missing, engine.BLOCK_SIZE, [s["epoch"] if s else 0 for s in starts]):
            block = [missing[i] for i in idx]
            k = len(block)
            start = time.perf_counter()
            results_ = engine.train_cells(
                block,
                split,
                device=str(device),
                curve_every=curve_every,
                return_params=flatness,
                progress=lambda _d, _t, epoch, epochs, k=k: progress.update(k, epoch, epochs),
                start_states=[starts[i] for i in idx],
                return_state=any(c in keep_state for c in block),
            )
            for cell, result in zip(block, results_, strict=True):
                state = result.pop("state", None)
                if cell in keep_state and state is not None and not result["diverged"]:
                    store.put_state(keys[cell], state)
            if flatness:
                for result in results_:
                    result["flatness"] = measure_flatness(result.pop("params"), split, result["diverged"], analysis)
            progress.finish_block(len(block))
            wall = time.perf_counter() - start
            timing = {"wall_s": wall / len(block), "pack_wall_s": wall, "pack_size": len(block)}
            for i, cell, result in zip(idx, block, results_, strict=True):
                resumed = {"resumed_from_epoch": starts[i]["epoch"] if starts[i] else None}
                records[cell] = store.put(keys[cell], make_record(cell, result, {**provenance, **timing, **resumed}))
    for cell in cells:
        files.write_json(paths[cell], records[cell])
    log.info("trained %d, reused %d", len(missing), len(cells) - len(missing))
    return len(missing), len(cells) - len(missing)


def _start_states(store: CellStore, cells: list[Cell], prefixes: dict[Cell, Cell], context: dict) -> list:
    """Per cell, the stored end state of its shorter run, or None (then it trains from the start)."""
    states = []
    for cell in cells:
        prefix = prefixes.get(cell)
        states.append(store.get_state(result_key(prefix.to_dict(), context)) if prefix else None)
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
