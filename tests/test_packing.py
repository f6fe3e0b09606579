"""Jobs sized to the cores: the default study's jobs fill 2, 4 and 8 cores to the end (a simulated schedule,
the Snakefile's priorities and dependencies), and a job's name alone tells its cells."""

from __future__ import annotations

import heapq

import pytest
from workflow_helpers import repo_config

from genboost import wiring
from genboost.config import packing
from genboost.config.study import Study
from genboost.errors import ConfigError
from genboost.train.resume import Lineage


@pytest.fixture(scope="module")
def study():
    return Study.from_config(repo_config())


def planned_jobs(study, cores: int) -> dict[str, dict]:
    """job file -> {cost: gradient evaluations, needs: job files, priority}, as the Snakefile plans them."""
    lineage = Lineage(study)
    parts = {e.name: packing.parts(e, cores) for e in study.experiments}
    out = {}
    for exp in study.experiments:
        for names in packing.jobs(exp, parts[exp.name]):
            cells = packing.job_cells(exp, names)
            cost = 0
            for cell in cells:
                found = lineage.shorter_run(exp, cell)
                cost += (cell.epochs - (found[1].epochs if found else 0)) * (2 if cell.rho > 0 else 1)
            out[wiring.job_file(exp, study.results).format(**names)] = {
                "cost": cost,
                "needs": wiring.job_inputs(lineage, exp, cells, parts),
                "priority": wiring.job_priority(lineage, exp, names),
            }
    return out


def makespan(jobs: dict[str, dict], cores: int) -> float:
    """When the last job ends if each free core takes the ready job of highest priority (as Snakemake does)."""
    done: dict[str, float] = {}
    running: list[tuple[float, str]] = []
    now = 0.0
    while len(done) < len(jobs):
        started = {name for _, name in running}
        waiting = [n for n in jobs if n not in done and n not in started]
        ready = [n for n in waiting if all(d in done for d in jobs[n]["needs"])]
        ready.sort(key=lambda n: -jobs[n]["priority"])
        for name in ready[: cores - len(running)]:
            heapq.heappush(running, (now + jobs[name]["cost"], name))
        now, name = heapq.heappop(running)
        done[name] = now
    return max(done.values())


@pytest.mark.parametrize("cores", [2, 4, 8])
def test_the_default_studys_jobs_leave_no_core_idle(study, cores):
    jobs = planned_jobs(study, cores)
    total = sum(j["cost"] for j in jobs.values())
    assert makespan(jobs, cores) == pytest.approx(total / cores)  # every core busy to the end
    # second_chance waits for main's Adam + SAM 0.02 job only, and each of its jobs is no smaller than 8 models
    assert all(len(j["needs"]) == 1 for name, j in jobs.items() if "/second_chance/" in name)
    assert packing.parts(study.experiment("second_chance"), cores) == cores


def test_one_job_per_pack_where_no_core_count_is_known(study):
    assert [packing.parts(e, None) for e in study.experiments] == [1, 1]
    assert [packing.parts(e, 1) for e in study.experiments] == [1, 1]
    # 64 cores: second_chance's 72 models in parts of at least MIN_PART_MODELS
    assert packing.parts(study.experiment("second_chance"), 64) == 72 // packing.MIN_PART_MODELS


def test_a_jobs_name_tells_its_cells(study):
    exp = study.experiment("second_chance")
    parts = [packing.job_cells(exp, {"optimizer": "adam", "rho": "0.02", "part": f"{i}of4"}) for i in (1, 2, 3, 4)]
    assert [len(p) for p in parts] == [18] * 4
    assert [c for p in parts for c in p] == exp.cells()
    for text in ("0of4", "5of4", "1of0", "one"):
        with pytest.raises(ConfigError, match="is not <i>of<n>"):
            packing.job_cells(exp, {"optimizer": "adam", "rho": "0.02", "part": text})
    with pytest.raises(ConfigError, match="73 parts of a pack of 72 cells"):
        packing.job_cells(exp, {"optimizer": "adam", "rho": "0.02", "part": "1of73"})


def test_a_cuda_experiment_trains_each_pack_in_one_job():
    config = repo_config()
    config["train"]["device"] = "cuda"
    study = Study.from_config(config)
    assert [packing.parts(e, 8) for e in study.experiments] == [1, 1]
