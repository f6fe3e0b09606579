"""Time of `genboost.measures.pacbayes.block_measures` per block of 72 models on the real training set (1 thread).

    python benchmarks/bench_measures.py [--samples 32] [--iters 8] [--epochs 100] [--repeats 3] [--csv PATH]

The 72 models are the engine's block of the study's lrs x wds x 3 seeds (Adam, no SAM), trained for
`--epochs` epochs so that the measures see trained weights (the time does not depend on the weights: the
bisection runs its `iters` steps whatever they are). Printed: the median wall time per block over `--repeats`
calls, against the block's training time scaled to the study's 200 epochs; the measures' range and the models
the bisection left at a bound; and, for the Monte Carlo error of `samples`, the median and largest ratio
max / min of each flatness under three different noise seeds.
"""

from __future__ import annotations

import argparse
import itertools
import math
import os
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench_engine import load_data, train_cells  # noqa: E402  (this folder is on sys.path when run as a script)

from genboost.measures import pacbayes as measures  # noqa: E402
from genboost.train.model import Cell, init_params, layer_sizes  # noqa: E402

DEFAULT_CSV = Path(
    os.environ.get("GENBOOST_DATA_CSV") or ROOT.parent / "shared" / "data" / "ObesityDataSet_raw_and_data_sinthetic.csv"
)
LRS = (3e-5, 1e-4, 3e-4, 1e-3, 3e-3, 2e-2)
WDS = (0.0, 1e-4, 1e-3, 1e-2)
STUDY_EPOCHS = 200


def trained_block(split, epochs: int) -> tuple[list, list, float]:
    """The block's trained and initial params, and the seconds its training took."""
    cells = [Cell("adam", lr, wd, 0.0, seed=s, epochs=epochs) for s, lr, wd in itertools.product(range(3), LRS, WDS)]
    start = time.perf_counter()
    results = train_cells(cells, split, return_params=True)
    seconds = time.perf_counter() - start
    sizes = layer_sizes(split.x_train.shape[1], cells[0].hidden)
    return [r["params"] for r in results], [init_params(c.seed, sizes) for c in cells], seconds


def spread(split, params, inits, settings) -> dict[str, tuple[float, float]]:
    """Per flatness measure: (median, max) over models of max/min of its value under three noise seeds."""
    runs = [
        measures.block_measures(params, inits, split.x_train, split.y_train, seeds=[seed] * len(params),
                                settings=settings)
        for seed in (1, 2, 3)
    ]  # fmt: skip
    out = {}
    for key in ("pacbayes_flatness", "pacbayes_mag_flatness"):
        ratios = [max(v) / min(v) for v in zip(*([m[key] for m in run] for run in runs), strict=True)]
        out[key] = (statistics.median(ratios), max(ratios))
    return out


def at_bounds(flatness: list[float], bounds: tuple[float, float], iters: int) -> tuple[int, int]:
    """How many models the bisection left at its lower bound (sharper) and at its last step below the upper."""
    lo, hi = bounds
    top = hi * (lo / hi) ** (1 / 2**iters)
    return sum(math.isclose(f, lo**-2) for f in flatness), sum(math.isclose(f, top**-2) for f in flatness)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--csv", type=Path, default=DEFAULT_CSV)
    parser.add_argument("--samples", type=int, default=measures.FlatnessSettings.samples)
    parser.add_argument("--iters", type=int, default=measures.FlatnessSettings.iters)
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    split = load_data(args.csv)
    params, inits, train_s = trained_block(split, args.epochs)
    settings = measures.FlatnessSettings(samples=args.samples, iters=args.iters)
    times = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        out = measures.block_measures(params, inits, split.x_train, split.y_train, settings=settings)
        times.append(time.perf_counter() - start)
    print(f"block of {len(params)} models, {tuple(split.x_train.shape)} training set, {args.threads} thread(s), "
          f"samples={args.samples}, iters={args.iters}: {statistics.median(times):.3f} s per block "
          f"(runs: {', '.join(f'{t:.3f}' for t in times)})")  # fmt: skip
    study_train_s = train_s * STUDY_EPOCHS / args.epochs
    share = 100 * statistics.median(times) / study_train_s
    print(f"  training this block for the study's {STUDY_EPOCHS} epochs (no SAM): ~{study_train_s:.0f} s "
          f"(measured over {args.epochs}); the measures add {share:.1f}%")  # fmt: skip
    for key in measures.MEASURE_KEYS:
        values = [m[key] for m in out]
        print(f"  {key}: min {min(values):.4g}, median {statistics.median(values):.4g}, max {max(values):.4g}")
    for key, bounds in (
        ("pacbayes_flatness", settings.sigma_bounds),
        ("pacbayes_mag_flatness", settings.mag_sigma_bounds),
    ):
        sharp, flat = at_bounds([m[key] for m in out], bounds, settings.iters)
        print(f"  {key}: {sharp} models at the lower sigma bound {bounds[0]:g}, {flat} at the upper {bounds[1]:g}")
    for key, (median, worst) in spread(split, params, inits, settings).items():
        print(f"  {key}: max/min over 3 noise seeds: median {median:.3f}, worst {worst:.3f} over the models")


if __name__ == "__main__":
    main()
