"""Benchmark the whole study on this machine and print the figures the README quotes.

    python benchmarks/bench_study.py --out benchmarks/results/cpu.json

1. the engine micro-benchmark (benchmarks/bench_engine.py: reference trainer vs engine at K = 1, 8, 48, 192);
2. the full default study (648 models) through `snakemake --cores N` from a clean results/;
3. the one-process-per-model baseline: a sample of cells run with `pack: []` (one Snakemake job, so one fresh
   Python process, per model), extrapolated to the whole study;
and the ratios, all measured in the same run. Everything runs in a temporary copy of the workflow.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from genboost.grid import Study

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CSV = ROOT.parent / "shared" / "data" / "ObesityDataSet_raw_and_data_sinthetic.csv"


def workdir_with(config: dict, base: Path) -> Path:
    base.mkdir(parents=True)
    shutil.copy(ROOT / "Snakefile", base / "Snakefile")
    shutil.copytree(ROOT / "workflow", base / "workflow", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(ROOT / "envs", base / "envs")
    (base / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    return base


def timed_snakemake(workdir: Path, cores: int) -> float:
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "snakemake", "--cores", str(cores), "--quiet", "all"], cwd=workdir, check=True
    )
    return time.perf_counter() - start


def count_models(config: dict) -> int:
    """Models of the enabled experiments."""
    return len(Study.from_config(config).all_metrics())


def baseline_config(config: dict, per_axis: int) -> dict:
    """A sample of the main grid, one cell per job: both optimizers, SAM off and on, a few lrs and wds."""
    cfg = json.loads(json.dumps(config))
    main = cfg["experiments"]["main"]
    main["lrs"] = main["lrs"][1 :: max(1, len(main["lrs"]) // per_axis)][:per_axis]
    main["wds"] = main["wds"][:1]
    main["rhos"] = [main["rhos"][0], main["rhos"][-1]]
    main["seeds"] = main["seeds"][:1]
    cfg["experiments"] = {"main": main}  # the others (enabled or not) are left out of the sample
    cfg["train"]["pack"] = []
    return cfg


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True, help="JSON file for the figures")
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--csv", type=Path, default=Path(os.environ.get("GENBOOST_DATA_CSV", DEFAULT_CSV)))
    parser.add_argument(
        "--baseline-lrs", type=int, default=2, help="lrs in the baseline sample (x 2 optimizers x 2 rho)"
    )
    parser.add_argument("--skip-engine", action="store_true", help="skip the engine micro-benchmark")
    args = parser.parse_args()

    config = yaml.safe_load((ROOT / "config.yaml").read_text())
    config["data"]["local_copy"] = str(args.csv)
    figures: dict = {
        "machine": {
            "cpu": platform.processor() or platform.machine(),
            "cores_used": args.cores,
            "os_cpus": os.cpu_count(),
            "python": platform.python_version(),
        }
    }
    with tempfile.TemporaryDirectory() as tmp:
        if not args.skip_engine:
            engine_json = Path(tmp) / "engine.json"
            subprocess.run(
                [sys.executable, str(ROOT / "benchmarks" / "bench_engine.py"), "--out", str(engine_json)], check=True
            )
            figures["engine"] = json.loads(engine_json.read_text())

        full = workdir_with(config, Path(tmp) / "full")
        models = count_models(config)
        wall = timed_snakemake(full, args.cores)
        figures["study"] = {
            "models": models,
            "wall_s": wall,
            "per_model_s": wall / models,
            "pack": config["train"]["pack"],
        }
        print(
            f"full default study: {models} models in {wall:.1f} s with --cores {args.cores} "
            f"({wall / models:.3f} s per model, pack {config['train']['pack']})"
        )

        base_cfg = baseline_config(config, args.baseline_lrs)
        base = workdir_with(base_cfg, Path(tmp) / "baseline")
        # download + preprocess are not part of the per-model cost: build them first, untimed
        subprocess.run(
            [
                sys.executable,
                "-m",
                "snakemake",
                "--cores",
                str(args.cores),
                str(Path("results") / "data" / "train.csv"),
                "--quiet",
            ],
            cwd=base,
            check=True,
        )
        n = count_models(base_cfg)
        base_wall = timed_snakemake(base, args.cores)
        per_model = base_wall / n
        figures["baseline"] = {
            "sample_models": n,
            "sample_wall_s": base_wall,
            "per_model_s": per_model,
            "extrapolated_study_s": per_model * models,
        }
        print(
            f"one process per model: {n} sampled models in {base_wall:.1f} s -> {per_model:.2f} s per model, "
            f"{per_model * models:.0f} s for {models} models (extrapolated)"
        )

    figures["speedup_vs_baseline"] = figures["baseline"]["extrapolated_study_s"] / figures["study"]["wall_s"]
    print(f"speed-up of the pipeline over one process per model: {figures['speedup_vs_baseline']:.1f}x")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(figures, indent=2) + "\n")
    print(f"figures written to {args.out}")


if __name__ == "__main__":
    main()
