"""Per-model wall time of the oracle and of the stacked engine at K = 1, 8, 48, 72, 96, 192 (real data).

    python benchmarks/bench_engine.py --out benchmarks/results/engine.json [--threads 1] [--quick]
    python benchmarks/bench_engine.py --step-profile [--ks 72]


Each optimizer setting (SGD, Adam, each without and with SAM) trains cells spread over the study's lrs, wds
and seeds for `--epochs` epochs (scaled down from the study's 200 / 100 with SAM: the time per epoch is flat).
The oracle trains a few of them one at a time, after a warm-up, so process start-up is not counted in
either figure. Printed and written: seconds per model per epoch, the ratio oracle / engine, and the
per-model time extrapolated to the study's epochs.
"""

from __future__ import annotations

import argparse
import itertools
import math
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from genboost.data.preprocess import preprocess  # noqa: E402
from genboost.data.tensors import load_split  # noqa: E402
from genboost.files import write_json  # noqa: E402
from genboost.train.blocks import BLOCK_SIZE  # noqa: E402
from genboost.train.engine import train_blocks  # noqa: E402
from genboost.train.model import Cell  # noqa: E402
from genboost.train.oracle import train_cell  # noqa: E402

DEFAULT_CSV = ROOT.parent / "shared" / "data" / "ObesityDataSet_raw_and_data_sinthetic.csv"
LRS = (3e-5, 1e-4, 3e-4, 1e-3, 3e-3, 2e-2)
WDS = (0.0, 1e-4, 1e-3, 1e-2)
SETTINGS = {"sgd": ("sgd", 0.0), "adam": ("adam", 0.0), "sgd+sam": ("sgd", 0.05), "adam+sam": ("adam", 0.05)}
STUDY_EPOCHS = {False: 200, True: 100}  # without / with SAM


def load_data(csv: Path):
    """The obesity split as config.yaml's `obesity` entry and preprocessing make it."""
    import yaml

    entry = yaml.safe_load((ROOT / "config.yaml").read_text())["datasets"]["obesity"]
    with tempfile.TemporaryDirectory() as tmp:
        out = [Path(tmp) / name for name in ("train.csv", "test.csv", "manifest.json")]
        preprocess(csv, *out, {"name": "obesity", **entry}, test_fraction=0.2, split_seed=0)
        return load_split(out[0], out[1])


def grid_cells(optimizer: str, rho: float, k: int, epochs: int) -> list[Cell]:
    """k cells over the study's lr x wd x seed axes."""
    points = itertools.islice(itertools.product(range(k), LRS, WDS), k)
    return [Cell(optimizer, lr, wd, rho, seed=seed, epochs=epochs) for seed, lr, wd in points]


def train_cells(cells, split, **options) -> list[dict]:
    """The engine's results, in the order of `cells`, by the pipeline's path (`engine.train_blocks`)."""
    results: list[dict | None] = [None] * len(cells)
    for idx, out in train_blocks(cells, split, **options):
        for i, result in zip(idx, out, strict=True):
            results[i] = result
    return results


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def bench_setting(name: str, split, ks: list[int], n_oracle: int, epochs: int, device: str = "cpu") -> dict:
    optimizer, rho = SETTINGS[name]
    oracle_cells = grid_cells(optimizer, rho, n_oracle, epochs)[2::3] or grid_cells(optimizer, rho, 1, epochs)
    train_cell(oracle_cells[0], split, device=device, max_steps=2)  # warm-up: a process's first optimizer is slow
    oracle = sum(timed(lambda c=c: train_cell(c, split, device=device)) for c in oracle_cells)
    oracle /= len(oracle_cells) * epochs
    train_cells(grid_cells(optimizer, rho, 2, 1), split, device=device, max_steps=2)
    engine = {}
    for k in ks:
        cells = grid_cells(optimizer, rho, k, epochs)
        # results are read back as Python floats at the end, so a CUDA run is timed to its last kernel
        engine[k] = timed(lambda cells=cells, k=k: train_cells(cells, split, device=device, block_size=k))
        engine[k] /= k * epochs
    study_epochs = STUDY_EPOCHS[rho > 0]
    return {
        "oracle_s_per_model_epoch": oracle,
        "oracle_cells": len(oracle_cells),
        "engine_s_per_model_epoch": {str(k): t for k, t in engine.items()},
        "speedup": {str(k): oracle / t for k, t in engine.items()},
        "study_epochs": study_epochs,
        "oracle_s_per_model_study": oracle * study_epochs,
        "engine_s_per_model_study": {str(k): t * study_epochs for k, t in engine.items()},
    }


def step_profile(split, k: int, epochs: int = 6) -> dict:
    """Per block step at K = k, per setting: the median ms of a step over epochs 2.. (timed per epoch, so a
    busy machine's slow stretches show as outliers, not in the median), and the share of torch.bmm in a
    profiled run (torch.profiler, self CPU time of the step loop's ops)."""
    from torch.profiler import ProfilerActivity, profile

    figures = {}
    for name, (optimizer, rho) in SETTINGS.items():
        cells = grid_cells(optimizer, rho, k, epochs)
        spe = math.ceil(split.x_train.shape[0] / cells[0].batch_size)
        stamps = []
        train_cells(cells, split, progress=lambda *_, stamps=stamps: stamps.append(time.perf_counter()))
        step_ms = statistics.median((b - a) / spe * 1e3 for a, b in itertools.pairwise(stamps))
        with profile(activities=[ProfilerActivity.CPU], record_shapes=True) as prof:
            train_cells(cells, split, max_steps=2 * spe)
        ops = prof.key_averages(group_by_input_shape=True)  # one entry per op and shape: the same totals
        bmm_share = sum(e.self_cpu_time_total for e in ops if e.key == "aten::bmm") / sum(
            e.self_cpu_time_total for e in ops
        )
        bmm_ms = bmm_alone_ms(ops, 2 * spe)
        figures[name] = {"step_ms_median": step_ms, "bmm_share": bmm_share, "bmm_alone_ms": bmm_ms}
        print(
            f"{name:9s} K={k}: {step_ms:.2f} ms a step (median of {len(stamps) - 1} epochs), bmm {bmm_share:.0%}"
            f" in the profile; the step's bmm calls alone, timed directly: {bmm_ms:.2f} ms ({bmm_ms / step_ms:.0%})"
        )
    return figures


def bmm_alone_ms(ops, steps: int, repeats: int = 200) -> float:
    """The ms a step spends in torch.bmm at the speed the same calls reach alone: each profiled bmm shape is
    timed directly (`out=`, no allocation) and weighted by its calls per step. The profiler's own per-op
    times are not used: its overhead inflates small ops."""
    total = 0.0
    for e in ops:
        if e.key != "aten::bmm":
            continue
        a, b = (torch.randn(shape) for shape in e.input_shapes[:2])
        out = torch.empty(a.shape[0], a.shape[1], b.shape[2])
        torch.bmm(a, b, out=out)
        start = time.perf_counter()
        for _ in range(repeats):
            torch.bmm(a, b, out=out)
        total += (time.perf_counter() - start) / repeats * e.count / steps
    return total * 1e3


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, help="write the figures to this JSON file")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    parser.add_argument("--quick", action="store_true", help="2 epochs, K up to 48, one oracle cell")
    parser.add_argument("--epochs", type=int, help="epochs per model (default 10, --quick 2)")
    parser.add_argument("--csv", type=Path, default=DEFAULT_CSV, help="the raw obesity CSV")
    parser.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    parser.add_argument("--ks", help="comma-separated block sizes K (default 1,8,48,72,96,192; --quick 1,8,48)")
    parser.add_argument("--step-profile", action="store_true", help="only the per-step time and bmm share (K=72)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    epochs = args.epochs or (2 if args.quick else 10)
    ks = [int(k) for k in args.ks.split(",")] if args.ks else [1, 8, 48] if args.quick else [1, 8, 48, 72, 96, 192]
    split = load_data(args.csv)
    if args.step_profile:
        figures = {"torch": torch.__version__, "threads": args.threads, "steps": {}}
        for k in [int(k) for k in args.ks.split(",")] if args.ks else [72]:
            figures["steps"][str(k)] = step_profile(split, k)
        if args.out:
            write_json(args.out, figures)
        return figures
    figures = {
        "torch": torch.__version__,
        "machine": platform.processor() or platform.machine(),
        "threads": args.threads,
        "device": torch.cuda.get_device_name() if args.device == "cuda" else "cpu",
        "epochs": epochs,
        "rows": {"train": split.x_train.shape[0], "test": split.x_test.shape[0], "features": split.x_train.shape[1]},
        "block_size_default": BLOCK_SIZE,
        "settings": {},
    }
    print(f"{figures['device']} threads={args.threads} epochs={epochs}; per model and epoch (speedup over the oracle)")
    for name in SETTINGS:
        result = bench_setting(name, split, ks, 1 if args.quick else 6, epochs, args.device)
        figures["settings"][name] = result
        row = "  ".join(
            f"K={k}: {result['engine_s_per_model_epoch'][str(k)] * 1e3:.2f} ms ({result['speedup'][str(k)]:.1f}x)"
            for k in ks
        )
        print(f"{name:9s} oracle {result['oracle_s_per_model_epoch'] * 1e3:.1f} ms | {row}", flush=True)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        write_json(args.out, figures)
    return figures


if __name__ == "__main__":
    main()
