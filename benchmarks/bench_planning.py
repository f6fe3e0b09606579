"""How Snakemake's planning grows with the number of models: dry runs of the default study with more seeds.

    python benchmarks/bench_planning.py --out benchmarks/results/planning.json

Each study is config.yaml with main's and second_chance's seeds multiplied (x1 is the default 648 models), planned
from a clean temporary copy of the workflow with `snakemake -n --quiet rules --cores N` (the median of
`--repeats` runs). It prints each plan's time, the growth exponent (the slope of log time against log models,
1 for linear), the ratio of the x50 plan to the x5 plan (10x the models), and then one full dry run
(`snakemake -n`, every job printed) of a study of at least 100,000 models.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_study import ROOT, workdir_with  # noqa: E402

from genboost.config import settings  # noqa: E402
from genboost.config.study import Study  # noqa: E402

EXPERIMENTS = ("main", "second_chance")


def study_config(times: int) -> dict:
    """config.yaml with `times` as many seeds in main and second_chance."""
    config = yaml.safe_load((ROOT / "config.yaml").read_text())
    for name in EXPERIMENTS:
        seeds = config["experiments"][name]["seeds"]
        config["experiments"][name]["seeds"] = list(range(len(seeds) * times))
    return config


def models(config: dict) -> int:
    checked = settings.checked(config)
    return sum(len(e.cells()) for e in Study.from_config(checked).experiments)


def timed_plan(workdir: Path, cores: int, quiet: bool) -> float:
    args = [sys.executable, "-m", "snakemake", "-n", "--cores", str(cores)] + (["--quiet", "rules"] if quiet else [])
    start = time.perf_counter()
    subprocess.run(args, cwd=workdir, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def slope(points: list[tuple[int, float]]) -> float:
    """Least-squares slope of log(seconds) against log(models)."""
    xs, ys = [math.log(n) for n, _ in points], [math.log(t) for _, t in points]
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sum((x - mx) ** 2 for x in xs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--times", default="1,5,10,50,150", help="seed multipliers of the planning ladder")
    parser.add_argument("--big", type=int, default=155, help="seed multiplier of the full dry run (>= 100k models)")
    parser.add_argument("--cores", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for times in [int(t) for t in args.times.split(",")]:
            config = study_config(times)
            workdir = workdir_with(config, Path(tmp) / f"x{times}")
            runs = [timed_plan(workdir, args.cores, quiet=True) for _ in range(args.repeats)]
            rows.append({"times": times, "models": models(config), "seconds": statistics.median(runs), "runs": runs})
            print(f"seeds x{times}: {rows[-1]['models']:,} models planned in {rows[-1]['seconds']:.1f} s "
                  f"(runs: {', '.join(f'{r:.1f}' for r in runs)})", flush=True)  # fmt: skip
        exponent = slope([(r["models"], r["seconds"]) for r in rows])
        print(f"growth exponent (log-log slope over {len(rows)} plans): {exponent:.2f}")
        by_times = {r["times"]: r["seconds"] for r in rows}
        ratio = by_times[50] / by_times[5] if {5, 50} <= set(by_times) else None
        if ratio is not None:
            print(f"x50 / x5 (10x the models): {ratio:.1f}x the time")
        big = study_config(args.big)
        workdir = workdir_with(big, Path(tmp) / f"dry-run-x{args.big}")
        seconds = timed_plan(workdir, args.cores, quiet=False)
        print(f"full dry run (snakemake -n --cores {args.cores}) of {models(big):,} models: {seconds:.1f} s")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        summary = {"cores": args.cores, "plans": rows, "exponent": exponent, "x50_over_x5": ratio,
                   "dry_run": {"times": args.big, "models": models(big), "seconds": seconds}}  # fmt: skip
        args.out.write_text(json.dumps(summary, indent=2) + "\n")


if __name__ == "__main__":
    main()
