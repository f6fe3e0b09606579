"""bench_edits: the jobs a Snakemake run started and the counts their logs report, and one edit end to end."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))

from bench_edits import logged_counts, main, report, started_jobs  # noqa: E402

OUTPUT = """
Building DAG of jobs...
[Mon Dec  7 04:50:43 2026]
localrule train_main:
    output: results/main/jobs/train/optimizer=sgd/rho=0/part=1of2.json
    log: results/logs/main/train/optimizer=sgd/rho=0/part=1of2.log
    jobid: 7
    wildcards: optimizer=sgd, rho=0, part=1of2
[Mon Dec  7 04:50:50 2026]
rule measure_main:
    log: results/logs/main/measure/optimizer=sgd/rho=0/part=1of2.log
    jobid: 12
    wildcards: optimizer=sgd, rho=0, part=1of2
[Mon Dec  7 04:51:02 2026]
Finished jobid: 7 (Rule: train_main)
localrule summary:
    log: results/logs/summary.log
    jobid: 3
localrule all:
    jobid: 0
"""
TRAIN_LOG = """2026-12-07 04:50:44,007 INFO job of 96 cells: 72 in the store, 24 to train on cpu
2026-12-07 04:50:58,313 INFO trained 24, reused 72
"""
MEASURE_LOG = """2026-12-07 04:51:03,847 INFO sharpness_radii: measured 0, reused 96
2026-12-07 04:51:03,848 INFO hessian_iters: measured 0, reused 96
2026-12-07 04:51:09,001 INFO pacbayes: measured 96, reused 0
"""


def test_the_jobs_a_run_started_and_their_logged_counts():
    jobs = started_jobs(OUTPUT)
    assert [(j.rule, j.wildcards, j.log) for j in jobs] == [
        ("train_main", "optimizer=sgd, rho=0, part=1of2", "results/logs/main/train/optimizer=sgd/rho=0/part=1of2.log"),
        ("measure_main", "optimizer=sgd, rho=0, part=1of2",
         "results/logs/main/measure/optimizer=sgd/rho=0/part=1of2.log"),
        ("summary", "", "results/logs/summary.log"),
    ]  # fmt: skip
    # each job's start and end, in seconds from the first timestamp: the measure job has not finished here
    assert [(j.start_s, j.end_s) for j in jobs] == [(0, 19), (7, None), (19, None)]
    assert logged_counts(TRAIN_LOG) == ["trained 24, reused 72"]
    assert logged_counts(MEASURE_LOG) == [
        "sharpness_radii: measured 0, reused 96",
        "hessian_iters: measured 0, reused 96",
        "pacbayes: measured 96, reused 0",
    ]
    jobs[0].counts, jobs[1].counts = logged_counts(TRAIN_LOG), logged_counts(MEASURE_LOG)
    printed = report(
        {"edit": "main.seeds: [0, 1, 2, 3]", "wall_s": 12.34, "cpu_s": 20.51, "jobs": [vars(j) for j in jobs]}
    )
    assert printed.splitlines() == [
        "main.seeds: [0, 1, 2, 3]: 12.3 s (20.5 CPU s); ran train_main, measure_main, summary",
        "  train_main (optimizer=sgd, rho=0, part=1of2): trained 24, reused 72",
        "  measure_main (optimizer=sgd, rho=0, part=1of2): sharpness_radii: measured 0, reused 96; "
        "hessian_iters: measured 0, reused 96; pacbayes: measured 96, reused 0",
        "  jobs (start-end s, from the first job's start): train_main 0-19",
    ]


@pytest.mark.slow
def test_edits_on_a_copy_of_a_finished_study(unpacked_run, tmp_path):
    """On the tiny finished study: nothing changed plans nothing, a comment in compare/summary.py reruns nothing
    (fingerprints hash code, not comments), a line of code there reruns the summary and no model; the study is left
    as it was. (A new seed's train and measure counts are parsed by the fast test above.)"""
    before = {p: p.stat().st_mtime_ns for p in unpacked_run.rglob("*") if p.is_file()}
    out = tmp_path / "edits.json"
    nothing, comment, code = main([str(unpacked_run), "--edits", "nothing", "summary_comment", "summary_code",
                                   "--out", str(out)])  # fmt: skip
    assert nothing["jobs"] == [] and comment["jobs"] == []
    rules = {j["rule"] for j in code["jobs"]}
    assert "summary" in rules and not any(r.startswith(("train_", "measure_")) for r in rules), rules
    assert out.is_file() and {p: p.stat().st_mtime_ns for p in unpacked_run.rglob("*") if p.is_file()} == before
