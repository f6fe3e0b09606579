"""Benchmark the edit loop: what one edit of a finished study reruns, and how long it takes.

    python benchmarks/bench_edits.py CHECKOUT [--cores 2] [--edits nothing seeds ...] [--out result.json]

CHECKOUT is the checkout a study was built in (its Snakefile, workflow/, genboost/, config.yaml, results/ and
Snakemake's metadata .snakemake/), finished: `snakemake -n` plans nothing there. Each edit gets a fresh copy of
the whole checkout in a temporary folder (every file keeps its mtime, so Snakemake sees the copy as finished
too), is applied there (code in the copy's genboost/, which the jobs import; settings as `--config`), and one
`snakemake --cores N` runs in the copy, timed. The checkout itself is never touched. For each edit it prints the
wall time and the CPU seconds of the run, the jobs that ran (each with its start and end), and what each train job
("trained N, reused M") and measure job ("<setting>: measured N, reused M") logged. `--cores` must be the count
the study was built with: it sizes the train jobs. `--config KEY=VALUE ...` (as the study was built with) is
passed to every run, before the edit's own.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

COMMENT = "\n# bench_edits: a comment, which changes no code\n"
# A line of code that changes nothing computed but the file's fingerprint: what a real edit of the file reruns.
CODE = "\n_BENCH_EDITED = True\n"
# name -> (what it is, the file of the checkout to append to and what, or the --config of the edit)
EDITS = {
    "nothing": ("nothing", None, None),
    "summary_comment": ("a comment in compare/summary.py", ("genboost/compare/summary.py", COMMENT), None),
    "figures_comment": ("a comment in analysis/figures.py", ("genboost/analysis/figures.py", COMMENT), None),
    "summary_code": ("a line of code in compare/summary.py", ("genboost/compare/summary.py", CODE), None),
    "figures_code": ("a line of code in analysis/figures.py", ("genboost/analysis/figures.py", CODE), None),
    "seeds": ("main.seeds: [0, 1, 2, 3]", None, "experiments={main: {seeds: [0, 1, 2, 3]}}"),
    "pacbayes": ("analysis.pacbayes.samples: 16", None, "analysis={pacbayes: {samples: 16}}"),
}
SKIPPED = shutil.ignore_patterns(".git", ".venv", "__pycache__", ".pytest_cache", ".ruff_cache")
COUNTS = re.compile(r"\b(trained|measured) (\d+), reused (\d+)")
STAMP = re.compile(r"\[(\w{3} \w{3} +\d+ \d\d:\d\d:\d\d \d{4})\]")  # Snakemake's time of what follows


@dataclass
class Job:
    """One job a run started: its rule, wildcards, log file and the counts its log reports."""

    rule: str
    wildcards: str = ""
    log: str = ""
    counts: list[str] = field(default_factory=list)  # "trained 24, reused 72" or "pacbayes: measured 8, reused 0"
    start_s: float | None = None  # from the run's first timestamp, to the second (Snakemake's resolution)
    end_s: float | None = None


def started_jobs(output: str) -> list[Job]:
    """The jobs of a Snakemake run's output, in the order they started (`rule all` left out), each with when it
    started and finished (what the critical path is made of)."""
    jobs, by_id, first, now = [], {}, None, None
    for line in map(str.strip, output.splitlines()):
        if stamp := STAMP.fullmatch(line):
            now = datetime.strptime(stamp[1], "%a %b %d %H:%M:%S %Y")
            first = first or now
        elif match := re.fullmatch(r"(?:local)?(?:rule|checkpoint) (\w+):", line):
            jobs.append(Job(match[1], start_s=_since(first, now)))
        elif jobs and line.startswith("wildcards:"):
            jobs[-1].wildcards = line.removeprefix("wildcards:").strip()
        elif jobs and line.startswith("log:"):
            jobs[-1].log = line.removeprefix("log:").strip().split(",")[0].strip()
        elif jobs and (match := re.fullmatch(r"jobid: (\d+)", line)):
            by_id[match[1]] = jobs[-1]
        elif (match := re.match(r"Finished jobid: (\d+)", line)) and match[1] in by_id:
            by_id[match[1]].end_s = _since(first, now)
    return [j for j in jobs if j.rule != "all"]


def _since(first: datetime | None, now: datetime | None) -> float | None:
    return (now - first).total_seconds() if first and now else None


def logged_counts(log_text: str) -> list[str]:
    """The "trained N, reused M" and "<setting>: measured N, reused M" messages of a job's log, in order."""
    return [line.split(" INFO ", 1)[-1].strip() for line in log_text.splitlines() if COUNTS.search(line)]


def copy_checkout(checkout: Path, folder: Path) -> Path:
    """A copy of the checkout that Snakemake sees as finished: results/ and .snakemake/ come along and every file
    keeps its mtime."""
    return Path(shutil.copytree(checkout, folder / "checkout", symlinks=True, ignore=SKIPPED))


def apply(edit: str, workdir: Path) -> list[str]:
    """Make the edit in the copy; the --config it needs (none for a code edit)."""
    _, appended, config = EDITS[edit]
    if appended:
        file, text = appended
        path = workdir / file
        if not path.is_file():
            raise SystemExit(f"{edit}: the checkout has no {file} (the package's code must be in the checkout)")
        path.write_text(path.read_text() + text)
    return [config] if config else []


def run(workdir: Path, cores: int, config: list[str]) -> tuple[float, float, list[Job]]:
    """(wall s, CPU s, the jobs that ran) of one `snakemake --cores N` in the copy, whose genboost the jobs import.
    The CPU seconds (user + system, Snakemake and every job) are the work an edit costs: on a machine other
    sessions load, the wall time grows with their load much more than these do."""
    env = {k: v for k, v in os.environ.items() if k != "GENBOOST_PLAN_CORES"}  # the run's own cores plan its jobs
    env["PYTHONPATH"] = os.pathsep.join([str(workdir), *filter(None, [env.get("PYTHONPATH")])])
    command = [sys.executable, "-m", "snakemake", "--cores", str(cores), *(["--config", *config] if config else [])]
    cpu_before, start = _children_cpu_s(), time.perf_counter()
    proc = subprocess.run(command, cwd=workdir, env=env, capture_output=True, text=True)
    wall, cpu = time.perf_counter() - start, _children_cpu_s() - cpu_before
    if proc.returncode != 0:
        raise SystemExit(f"snakemake failed in {workdir} ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    jobs = started_jobs(proc.stdout + proc.stderr)
    for job in jobs:
        log = workdir / job.log
        if job.log and log.is_file():
            job.counts = logged_counts(log.read_text())
    return wall, cpu, jobs


def _children_cpu_s() -> float:
    """User + system CPU seconds of this process's finished children (and theirs, once waited for)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def bench(checkout: Path, edit: str, cores: int, config: list[str]) -> dict:
    """One edit on a fresh copy of the checkout: its wall time and jobs."""
    with tempfile.TemporaryDirectory(prefix="bench_edits_") as folder:
        workdir = copy_checkout(checkout, Path(folder))
        wall, cpu, jobs = run(workdir, cores, [*config, *apply(edit, workdir)])
    return {"edit": EDITS[edit][0], "wall_s": wall, "cpu_s": cpu, "jobs": [vars(j) for j in jobs]}


def report(result: dict) -> str:
    """The lines printed for one edit: its wall time, how many jobs of each rule ran, each job's counts."""
    rules: dict[str, int] = {}
    for job in result["jobs"]:
        rules[job["rule"]] = rules.get(job["rule"], 0) + 1
    ran = ", ".join(f"{rule} x{n}" if n > 1 else rule for rule, n in rules.items()) or "no job"
    cpu = f" ({result['cpu_s']:.1f} CPU s)" if result.get("cpu_s") is not None else ""
    lines = [f"{result['edit']}: {result['wall_s']:.1f} s{cpu}; ran {ran}"]
    for job in result["jobs"]:
        if job["counts"]:
            lines.append(f"  {job['rule']} ({job['wildcards']}): {'; '.join(job['counts'])}")
    timed = [j for j in result["jobs"] if j.get("start_s") is not None and j.get("end_s") is not None]
    if timed:
        lines.append("  jobs (start-end s, from the first job's start): " + ", ".join(
            f"{j['rule']} {j['start_s']:.0f}-{j['end_s']:.0f}" for j in sorted(timed, key=lambda j: j["start_s"])
        ))  # fmt: skip
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("checkout", type=Path, help="the checkout a finished study was built in")
    parser.add_argument("--cores", type=int, default=2, help="the cores the study was built with (default 2)")
    parser.add_argument("--edits", nargs="+", choices=list(EDITS), default=list(EDITS))
    parser.add_argument("--config", nargs="+", default=[], help="KEY=VALUE the study was built with")
    parser.add_argument("--out", type=Path, help="also write the results as JSON here")
    args = parser.parse_args(argv)
    checkout = args.checkout.resolve()
    if not (checkout / "Snakefile").is_file() or not (checkout / ".snakemake").is_dir():
        parser.error(f"{checkout} has no Snakefile or no .snakemake/: not the checkout a study was built in")
    results = []
    for edit in args.edits:
        results.append(bench(checkout, edit, args.cores, args.config))
        print(report(results[-1]), flush=True)
    if args.out:
        args.out.write_text(json.dumps({"cores": args.cores, "edits": results}, indent=1) + "\n")
    return results


if __name__ == "__main__":
    main()
