"""Measuring is its own step and results are keyed by the code that computes them: the real Snakefile on a tiny
study, changed in its analysis settings and its code."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from workflow_helpers import append_code, copy_run, planned, planned_fields, snakemake

pytestmark = pytest.mark.slow

PACBAYES = ("pacbayes_flatness", "pacbayes_mag_flatness")
OTHER_SAMPLES = "analysis={pacbayes: {samples: 4, iters: 6, max_increase: 0.1}}"  # tiny.yaml: 8 samples, 4 iters
# What the tests below read: the train and measure jobs and their table, not the figures, comparison and summary
CELLS = "results/main/cells.csv"


@pytest.fixture(scope="module")
def study(unpacked_run) -> Path:
    """conftest's shared two-model study: one experiment, two train jobs (rho 0 and 0.05) of one model each, with a
    copy of the package to edit. Read only: each test edits and runs its own copy (`copy_run`)."""
    return unpacked_run


def train_logs(workdir: Path, step: str = "train") -> dict[str, str]:
    folder = workdir / f"results/logs/main/{step}"
    return {str(p.relative_to(folder)): p.read_text() for p in sorted(folder.rglob("*.log"))}


def job_files(workdir: Path) -> dict[str, bytes]:
    """Every train and measure job file of the study, by path."""
    folder = workdir / "results/main/jobs"
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*.json"))}


def measured(workdir: Path) -> list[str]:
    """The measure jobs' "<measure>: measured N, reused M" lines, sorted."""
    return sorted(line.split(" INFO ", 1)[1] for text in train_logs(workdir, "measure").values()
                  for line in text.splitlines() if ": measured " in line)  # fmt: skip


def trains(jobs: dict) -> list[str]:
    return [rule for rule in jobs if rule.startswith("train_")]


def test_another_analysis_setting_remeasures_and_trains_nothing(study, tmp_path):
    run = copy_run(study, tmp_path / "run")
    jobs = planned(run, "--config", OTHER_SAMPLES)
    assert trains(jobs) == [] and len(jobs["measure_main"]) == 2  # two jobs (a model each), one file each
    assert {"aggregate_main", "measures_figure_main", "summary"} <= set(jobs)
    assert "figures_main" not in jobs  # the figures that read no measure are kept
    assert "vs_talk" not in jobs
    before, logs = pd.read_csv(run / "results/main/cells.csv"), train_logs(run)
    snakemake(run, CELLS, "--config", OTHER_SAMPLES)
    after = pd.read_csv(run / "results/main/cells.csv")
    assert list(after.columns) == list(before.columns)
    assert not after[list(PACBAYES)].equals(before[list(PACBAYES)])
    assert after["test_mse"].equals(before["test_mse"]) and after["hessian_top_eig"].equals(before["hessian_top_eig"])
    assert train_logs(run) == logs  # no train job ran
    assert measured(run) == sorted(
        [*["hessian_iters: measured 0, reused 1"] * 2, *["pacbayes: measured 1, reused 0"] * 2,
         *["sharpness_radii: measured 0, reused 1"] * 2]
    )  # fmt: skip
    snakemake(run, CELLS)  # back to tiny.yaml's analysis: PAC-Bayes from the store, still nothing trained
    assert pd.read_csv(run / "results/main/cells.csv").equals(before) and train_logs(run) == logs
    assert all("measured 0, reused 1" in line for line in measured(run))


@pytest.mark.parametrize("edited", ["genboost/wiring.py", "Snakefile", "workflow/rules/train.smk"])
def test_editing_the_wiring_or_the_snakefile_trains_nothing(study, tmp_path, edited):
    """No result depends on the wiring: a train job that reruns anyway (Snakemake's own triggers) reuses every cell."""
    run = copy_run(study, tmp_path / "run")
    append_code(run / edited)
    if edited == "genboost/wiring.py":
        assert trains(planned(run)) == []
    logs = train_logs(run)
    snakemake(run)
    rerun = {name: text for name, text in train_logs(run).items() if logs.get(name) != text}
    assert all("trained 0, reused 1" in text for text in rerun.values()), rerun


def test_editing_the_job_bookkeeping_reruns_the_train_jobs_which_train_nothing(study, tmp_path):
    """Their measure jobs run too (Snakemake plans what follows a job that runs) and compute nothing: every job
    file comes out byte-identical, so the next run plans nothing, the figures and summary included (Snakemake
    compares a rewritten input's checksum). (On a copy: the shared study stays finished.)"""
    run = copy_run(study, tmp_path / "run")
    append_code(run / "genboost" / "train" / "jobs.py")
    assert sorted(trains(planned(run))) == ["train_main"]
    before = job_files(run)
    snakemake(run, CELLS)
    logs = train_logs(run)
    assert len(logs) == 2 and all("trained 0, reused 1" in text for text in logs.values()), logs
    assert len(measured(run)) == 6 and all("measured 0, reused 1" in line for line in measured(run))
    assert job_files(run) == before and planned(run) == {}


def test_editing_the_engine_retrains(study, tmp_path):
    run = copy_run(study, tmp_path / "run")
    append_code(run / "genboost" / "train" / "engine.py")
    assert sorted(trains(planned(run))) == ["train_main"]
    before = pd.read_csv(run / "results/main/cells.csv")
    snakemake(run, CELLS)
    logs = train_logs(run)
    assert len(logs) == 2 and all("trained 1, reused 0" in text for text in logs.values()), logs
    assert pd.read_csv(run / "results/main/cells.csv")["test_mse"].equals(before["test_mse"])  # no-op code


def test_a_comment_or_docstring_in_the_engine_plans_nothing(study, tmp_path):
    """The fingerprints hash the code Python runs (genboost.fingerprint.code_text): no model's result can change."""
    run = copy_run(study, tmp_path / "run")
    path = run / "genboost" / "train" / "engine.py"
    body = path.read_bytes().split(b'"""', 2)[2]  # the module without its docstring
    path.write_bytes(b'"""A new module docstring."""\n# a new comment\n\n' + body + b"\n# end\n")
    assert planned(run) == {}


def planned_priorities(workdir: Path, *args: str) -> dict[str, float]:
    """rule -> the Snakemake priority of its jobs in a dry run (Snakemake prints a priority other than 0)."""
    jobs = planned_fields(workdir, *args, field="priority")
    return {rule: float(values[0]) if values else 0.0 for rule, values in jobs.items()}


def test_a_new_measure_setting_plans_the_measures_then_the_summarys_chain_then_the_figures(study):
    """A free core takes the job the summary waits for before a figure that nothing waits for."""
    priority = planned_priorities(study, "--config", OTHER_SAMPLES, "--forcerun", "vs_talk")  # it reads no measure
    assert priority["measure_main"] > priority["aggregate_main"] == priority["vs_talk"] == priority["summary"]
    assert priority["summary"] > priority["measures_figure_main"] == 0
