"""bench_study's job timeline: each job's start and end read from a Snakemake log, and whether the job
slots stayed full while train jobs were still to start."""

import sys
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))

from bench_study import fewest_running, job_spans  # noqa: E402

LOG = """
[Thu Dec  3 06:31:58 2026]
localrule train_main:
    output: results/main/jobs/train/optimizer=sgd/rho=0/part=1of1.json
    jobid: 7
    wildcards: optimizer=sgd, rho=0, part=1of1
[Thu Dec  3 06:31:58 2026]
rule train_main:
    jobid: 8
    wildcards: optimizer=adam, rho=0, part=1of1
[Thu Dec  3 06:32:38 2026]
Finished jobid: 7 (Rule: train_main)
[Thu Dec  3 06:32:40 2026]
localrule measure_main:
    jobid: 12
    wildcards: optimizer=sgd, rho=0, part=1of1
[Thu Dec  3 06:32:41 2026]
Finished jobid: 8 (Rule: train_main)
[Thu Dec  3 06:32:41 2026]
localrule train_second_chance:
    jobid: 9
    wildcards: optimizer=adam, rho=0.02, part=1of1
[Thu Dec  3 06:32:47 2026]
Finished jobid: 12 (Rule: measure_main)
[Thu Dec  3 06:33:10 2026]
Finished jobid: 9 (Rule: train_second_chance)
"""
START = datetime(2026, 12, 3, 6, 31, 55).timestamp()


def test_job_spans_reads_each_jobs_rule_wildcards_start_and_end():
    jobs = job_spans(LOG, START)
    assert [(j["rule"], j["wildcards"], j["start_s"], j["end_s"]) for j in jobs] == [
        ("train_main", "optimizer=sgd, rho=0, part=1of1", 3, 43),
        ("train_main", "optimizer=adam, rho=0, part=1of1", 3, 46),
        ("measure_main", "optimizer=sgd, rho=0, part=1of1", 45, 52),
        ("train_second_chance", "optimizer=adam, rho=0.02, part=1of1", 46, 75),
    ]


def test_fewest_running_sees_an_idle_slot_before_the_last_train_job():
    jobs = job_spans(LOG, START)
    assert fewest_running(jobs) == 1  # 43-45 s: one job ran while the last train job was still to start
    jobs[2]["start_s"] = 43  # the measure job takes the freed slot at once
    assert fewest_running(jobs) == 2
