"""Where a traced study's CPU seconds went: per script (a Snakemake job's process, or Snakemake itself), how many
processes, their CPU seconds and their seconds alive; and the core-seconds no job ran on (`--cores` minus the
jobs running, over the run: Snakemake's planning and its gaps between jobs, and the tail's single jobs).
    python benchmarks/job_cpu.py TRACE [--cores 2] [--wall S]
TRACE: a file benchmarks/trace/sitecustomize.py wrote (benchmarks/ab_study.sh with AB_TRACE=folder)."""

from __future__ import annotations

import argparse
import re
from collections import defaultdict

SCRIPT = re.compile(r"\.snakemake/scripts/tmp[^.]*\.(\w+)\.py")


def read_trace(path: str) -> list[tuple[str, bool, float, float, float]]:
    """(name, whether a job, start, end, CPU s) per process, from the run's first start; a job's name is its
    script's."""
    rows = []
    for line in open(path, encoding="utf-8").read().splitlines():
        _, start, end, cpu, argv = line.split("\t", 4)
        job = SCRIPT.search(argv)
        name = job[1] if job else "snakemake" if argv.split()[0].endswith("snakemake/__main__.py") else argv.split()[0]
        rows.append((name, bool(job), float(start), float(end), float(cpu)))
    first = min(r[2] for r in rows)
    return [(n, j, s - first, e - first, c) for n, j, s, e, c in rows]


def idle_core_seconds(jobs: list[tuple[float, float]], cores: int, wall: float) -> float:
    """Core-seconds with fewer than `cores` jobs running, from the run's start to `wall`."""
    events = sorted([(s, 1) for s, _ in jobs] + [(e, -1) for _, e in jobs])
    running, last, idle = 0, 0.0, 0.0
    for t, step in events:
        idle += max(cores - running, 0) * (t - last)
        running, last = running + step, t
    return idle + cores * max(wall - last, 0.0)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("trace")
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--wall", type=float, help="the run's wall time (default: its last process's end)")
    args = parser.parse_args(argv)
    rows = read_trace(args.trace)
    per = defaultdict(lambda: [0, 0.0, 0.0])
    for name, _, start, end, cpu in rows:
        per[name][0] += 1
        per[name][1] += cpu
        per[name][2] += end - start
    for name, (n, cpu, alive) in sorted(per.items(), key=lambda kv: -kv[1][1]):
        print(f"{name:20s} {n:4d} processes {cpu:8.1f} CPU s {alive:8.1f} s alive")
    wall = args.wall or max(r[3] for r in rows)
    idle = idle_core_seconds([(s, e) for _, job, s, e, _ in rows if job], args.cores, wall)
    cpu = sum(r[4] for r in rows)
    print(f"total {cpu:.1f} CPU s; {idle:.1f} core-s without a job ({idle / (args.cores * wall):.1%})")


if __name__ == "__main__":
    main()
