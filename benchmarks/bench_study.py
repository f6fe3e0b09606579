"""Benchmark the whole study on this machine and print the figures the README quotes.

    python benchmarks/bench_study.py --out benchmarks/results/cpu.json

1. the engine micro-benchmark (benchmarks/bench_engine.py: oracle vs engine at K = 1, 8, 48, 192);
2. the full default study (648 models) through `snakemake --cores N` from a clean results/, `--repeats` times
   (the median counts; each run's time before, during and after training is printed too);
3. two one-process-per-model baselines on the same sample of cells, extrapolated to the whole study: the
   oracle, the plain loop (nn.Module, torch.optim) in a fresh Python process per model, `--cores` at a time,
   and the pipeline itself with `pack: []` (one Snakemake job, so one process, per model, engine at K = 1);
and the ratios, all measured in the same run. Everything runs in a temporary copy of the workflow.

The VM this was written on changes speed by up to a third within an hour, so before each study run the engine trains
72 Adam + SAM models for two epochs in this process: its time per model-epoch, printed beside the run's wall
time, says how fast the machine was then.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path

import yaml

from genboost import wiring
from genboost.config import settings
from genboost.config.study import Study

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CSV = ROOT.parent / "shared" / "data" / "ObesityDataSet_raw_and_data_sinthetic.csv"


def workdir_with(config: dict, base: Path) -> Path:
    base.mkdir(parents=True)
    shutil.copy(ROOT / "Snakefile", base / "Snakefile")
    shutil.copytree(ROOT / "workflow", base / "workflow", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(ROOT / "envs", base / "envs")
    shutil.copytree(ROOT / "reference", base / "reference")
    (base / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    return base


def timed_snakemake(workdir: Path, cores: int) -> tuple[float, float, float]:
    """(start, end, wall) of one `snakemake --cores N all`, as epoch seconds and seconds; its log (each job's
    start and end) goes to `snakemake.log` in `workdir`."""
    start, t0 = time.time(), time.perf_counter()
    with (workdir / "snakemake.log").open("w") as log:
        subprocess.run(
            [sys.executable, "-m", "snakemake", "--cores", str(cores), "all"],
            cwd=workdir,
            check=True,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    return start, time.time(), time.perf_counter() - t0


def job_spans(log: str, start: float) -> list[dict]:
    """Every job of a Snakemake log in the order it started: rule, wildcards, and the seconds from `start` to
    the job's start and end as Snakemake stamped them (whole seconds)."""
    stamp, job, jobs = 0.0, {}, {}
    for line in map(str.strip, log.splitlines()):
        if line.startswith("[") and line.endswith("]"):
            stamp = datetime.strptime(line[1:-1], "%a %b %d %H:%M:%S %Y").timestamp() - start
        elif match := re.fullmatch(r"(?:local)?rule (\w+):", line):
            job = {"rule": match[1], "wildcards": "", "start_s": round(stamp)}
        elif line.startswith("wildcards:"):
            job["wildcards"] = line.removeprefix("wildcards:").strip()
        elif line.startswith("jobid:"):
            jobs[line.split()[1]] = job
        elif match := re.match(r"Finished jobid: (\d+)", line):
            jobs[match[1]]["end_s"] = round(stamp)
    return sorted(jobs.values(), key=lambda j: j["start_s"])


def fewest_running(jobs: list[dict]) -> int:
    """The fewest jobs running at any second from the first train job's start to the last one's: whether the
    jobs kept every core busy while train jobs were still to start."""
    starts = [j["start_s"] for j in jobs if j["rule"].startswith("train_")]
    seconds = range(min(starts), max(starts) + 1)
    return min(sum(j["start_s"] <= t < j["end_s"] for j in jobs) for t in seconds)


def train_jobs(workdir: Path) -> dict[str, tuple[float, float]]:
    """Each train job's log (relative to results/logs) -> its first and last log lines' times, epoch seconds."""
    logs = workdir / "results" / "logs"
    spans = {}
    for log in logs.glob("*/train/**/*.log"):
        lines = [ln for ln in log.read_text().splitlines() if ln[:4].isdigit()]
        stamps = [datetime.strptime(ln[:23], "%Y-%m-%d %H:%M:%S,%f").timestamp() for ln in (lines[0], lines[-1])]
        spans[str(log.relative_to(logs))] = (stamps[0], stamps[1])
    return spans


def train_phase(workdir: Path) -> tuple[float, float, float]:
    """(first train job's first log line, last train job's last log line, summed train-job log spans), epoch s."""
    spans = train_jobs(workdir).values()
    return min(a for a, _ in spans), max(b for _, b in spans), sum(b - a for a, b in spans)


def machine_speed(split) -> float:
    """Engine ms per model-epoch, 72 Adam + SAM models, 2 epochs, 1 thread: how fast the machine is now."""
    import torch
    from bench_engine import grid_cells, train_cells

    torch.set_num_threads(1)
    cells = grid_cells("adam", 0.05, 72, 2)
    start = time.perf_counter()
    train_cells(cells, split)
    return (time.perf_counter() - start) / (72 * 2) * 1e3


def study_run(config: dict, base: Path, cores: int, split) -> dict:
    """One full study from a clean results/, with where its wall time went and the machine's speed before it."""
    speed = machine_speed(split)
    workdir = workdir_with(config, base)
    start, end, wall = timed_snakemake(workdir, cores)
    first, last, busy = train_phase(workdir)
    jobs = job_spans((workdir / "snakemake.log").read_text(), start)
    return {
        "wall_s": wall,
        "before_training_s": first - start,  # start-up, download, preprocess, first job's imports
        "training_s": last - first,
        "after_training_s": end - last,  # tables, figures, summary, Snakemake's exit
        "train_jobs_busy_s": busy,  # summed over jobs, from each job's first to last log line
        "engine_ms_per_model_epoch_before": speed,  # machine_speed(): lower is a faster machine
        "jobs": jobs,
        "fewest_running_while_train_jobs_start": fewest_running(jobs),
    }


def plain_baseline(config: dict, data_dir: Path, cores: int) -> tuple[int, float]:
    """(models, wall s): the sample's cells trained by the oracle (the plain loop), one fresh process per
    model, `cores` processes at a time (benchmarks/plain_model.py)."""
    cells = Study.from_config(config).experiment("main").cells()
    script = ROOT / "benchmarks" / "plain_model.py"
    train, test = str(data_dir / "train.csv"), str(data_dir / "test.csv")

    def run(cell) -> None:
        cmd = [sys.executable, str(script), train, test, json.dumps(cell.to_dict())]
        subprocess.run(cmd, check=True)

    start = time.perf_counter()
    with ThreadPoolExecutor(cores) as pool:
        list(pool.map(run, cells))
    return len(cells), time.perf_counter() - start


def baselines(config: dict, base: Path, cores: int, per_axis: int, models: int) -> dict:
    """Both one-process-per-model baselines on one sample of the main grid, extrapolated to `models`."""
    base_cfg = baseline_config(config, per_axis)
    workdir_with(base_cfg, base)
    # download + preprocess are not part of the per-model cost: build them first, untimed
    data = wiring.data_paths(Study.from_config(base_cfg).experiment("main"), "results")
    subprocess.run(
        [sys.executable, "-m", "snakemake", "--cores", str(cores), *data.values(), "--quiet"], cwd=base, check=True
    )
    wall = timed_snakemake(base, cores)[2]
    out = {"baseline": extrapolated("one job per model (pack: [])", count_models(base_cfg), wall, models)}
    sample, wall = plain_baseline(base_cfg, base / Path(data["train"]).parent, cores)
    out["plain_baseline"] = extrapolated("plain loop, one process per model", sample, wall, models)
    return out


def extrapolated(name: str, sample: int, wall: float, models: int) -> dict:
    per_model = wall / sample
    print(
        f"{name}: {sample} sampled models in {wall:.1f} s -> {per_model:.2f} s per model, "
        f"{per_model * models:.0f} s for {models} models (extrapolated)"
    )
    return {
        "sample_models": sample,
        "sample_wall_s": wall,
        "per_model_s": per_model,
        "extrapolated_study_s": per_model * models,
    }


def count_models(config: dict) -> int:
    """Models of the enabled experiments."""
    return sum(len(e.cells()) for e in Study.from_config(config).experiments)


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
    parser.add_argument("--device", default="cpu", help="train.device for the study and the engine benchmark")
    parser.add_argument("--skip-baselines", action="store_true", help="skip the one-process-per-model baselines")
    parser.add_argument(
        "--repeats", type=int, default=3, help="full-study runs (the VM's speed varies by ~15%%; the median counts)"
    )
    args = parser.parse_args()

    config = settings.checked(yaml.safe_load((ROOT / "config.yaml").read_text()))
    config["datasets"]["obesity"]["local_copy"] = str(args.csv)
    config["train"]["device"] = args.device
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
                [sys.executable, str(ROOT / "benchmarks" / "bench_engine.py"), "--out", str(engine_json)]
                + ["--device", args.device]
                + (["--ks", "1,8,48,192,648"] if args.device == "cuda" else []),
                check=True,
            )
            figures["engine"] = json.loads(engine_json.read_text())

        models = count_models(config)
        from bench_engine import load_data

        split = load_data(args.csv)
        runs = []
        for i in range(args.repeats):
            runs.append(study_run(config, Path(tmp) / f"full{i}", args.cores, split))
            r = runs[-1]
            print(
                f"full default study, run {i + 1}/{args.repeats}: {models} models in {r['wall_s']:.1f} s with "
                f"--cores {args.cores} (before training {r['before_training_s']:.1f} s, training "
                f"{r['training_s']:.1f} s, after {r['after_training_s']:.1f} s; machine speed before: "
                f"{r['engine_ms_per_model_epoch_before']:.2f} ms per model-epoch)"
            )
            for job in r["jobs"]:  # whether the jobs kept every core busy
                print(f"  {job['start_s']:5d} s - {job['end_s']:5d} s  {job['rule']} {job['wildcards']}")
            print(
                f"  fewest jobs running from the first train job's start to the last's: "
                f"{r['fewest_running_while_train_jobs_start']} (--cores {args.cores})"
            )
        wall = statistics.median(r["wall_s"] for r in runs)
        figures["study"] = {
            "models": models,
            "wall_s": wall,  # the median run
            "wall_s_runs": [r["wall_s"] for r in runs],
            "runs": runs,
            "per_model_s": wall / models,
            "pack": config["train"]["pack"],
        }
        walls = ", ".join(f"{w:.1f}" for w in figures["study"]["wall_s_runs"])
        print(f"full default study: median {wall:.1f} s of {len(runs)} runs ({walls}), {wall / models:.3f} s a model")

        if not args.skip_baselines:
            figures.update(baselines(config, Path(tmp) / "baseline", args.cores, args.baseline_lrs, models))
            study_wall = figures["study"]["wall_s"]
            figures["speedup_vs_plain_baseline"] = figures["plain_baseline"]["extrapolated_study_s"] / study_wall
            figures["speedup_vs_baseline"] = figures["baseline"]["extrapolated_study_s"] / study_wall
            print(
                f"speed-up of the pipeline: {figures['speedup_vs_plain_baseline']:.1f}x over a plain loop in one "
                f"process per model, {figures['speedup_vs_baseline']:.1f}x over one job per model (pack: [])"
            )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(figures, indent=2) + "\n")
    print(f"figures written to {args.out}")


if __name__ == "__main__":
    main()
