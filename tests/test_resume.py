"""Longer runs going on from shorter runs' end states: which cells, the job order, and the same numbers."""

from __future__ import annotations

import copy
import json
import logging
from dataclasses import replace

import pytest
import torch
import yaml
from workflow_helpers import repo_config

from genboost import wiring
from genboost.config import packing
from genboost.config.study import Study
from genboost.train import jobs
from genboost.train.resume import Lineage
from genboost.train.store import CellStore
from genboost.wiring_measure import MEASURE_PRIORITY


@pytest.fixture
def config():
    return repo_config()


def wildcards(cell, experiment):
    """The name of the job that trains `cell` (one part per pack)."""
    return packing.job_of(experiment, cell, 1)


def test_second_chance_goes_on_from_mains_adam_sam_002_cells(config):
    study = Study.from_config(config)
    lineage, main, second = Lineage(study), study.experiment("main"), study.experiment("second_chance")
    for cell in second.cells():
        experiment, shorter = lineage.shorter_run(second, cell)
        assert experiment is main and shorter == replace(cell, epochs=100)
    continued = [c for c in main.cells() if lineage.continued(main, c)]
    assert len(continued) == 72 and {(c.optimizer, c.rho, c.epochs) for c in continued} == {("adam", 0.02, 100)}
    assert not any(lineage.shorter_run(main, c) for c in main.cells())
    # the longer run's job (or part) waits for the job of main, of however many parts, that holds its shorter runs
    for parts in (1, 2, 3):
        first, last = second.cells()[:18], second.cells()[-18:]
        found = [wiring.job_inputs(lineage, second, cells, {"main": parts}) for cells in (first, last)]
        shorter_job = "results/main/jobs/train/optimizer=adam/rho=0.02/part={}of{}.json"
        assert found == [[shorter_job.format(1, parts)], [shorter_job.format(parts, parts)]]
    assert wiring.job_inputs(lineage, main, continued, {"main": 1}) == []


def test_the_continued_job_runs_first_and_the_continuing_job_last(config):
    study = Study.from_config(config)
    lineage, main, second = Lineage(study), study.experiment("main"), study.experiment("second_chance")
    priority = {
        (e.name, c.optimizer, c.rho): wiring.job_priority(lineage, e, wildcards(c, e))
        for e in (main, second)
        for c in e.cells()
    }
    continued, continuing = priority[("main", "adam", 0.02)], priority[("second_chance", "adam", 0.02)]
    others = {p for k, p in priority.items() if k not in {("main", "adam", 0.02), ("second_chance", "adam", 0.02)}}
    assert continued > max(others) and continuing < min(others)
    assert continuing > MEASURE_PRIORITY, "before the measure jobs: the confirmation's selection waits for it"


def resume_plan(config) -> dict:
    """(experiment, cell) -> (its shorter run's experiment and cell, whether a longer run goes on from it)."""
    study = Study.from_config(config)
    lineage = Lineage(study)
    return {
        (e.name, c): (
            (found[0].name, found[1]) if (found := lineage.shorter_run(e, c)) else None,
            lineage.continued(e, c),
        )
        for e in study.experiments
        for c in e.cells()
    }


def test_the_experiments_order_changes_nothing(config):
    """What --config naming second_chance does to the config's order: the same study, runs going on as before."""
    reordered = copy.deepcopy(config)
    reordered["experiments"] = {"second_chance": config["experiments"]["second_chance"], **config["experiments"]}
    assert list(reordered["experiments"])[0] == "second_chance"
    before, after = Study.from_config(config), Study.from_config(reordered)
    assert after == before and after.baseline == "main"
    assert resume_plan(reordered) == resume_plan(config)
    assert sum(found is not None for found, _ in resume_plan(config).values()) == 72


def test_a_run_goes_on_only_from_the_experiment_it_continues(config):
    """An experiment with the same runs, shorter, that second_chance does not continue, is not gone on from."""
    config = copy.deepcopy(config)
    config["experiments"]["short"] = {**config["experiments"]["main"], "sam_epochs": 50}
    plan = resume_plan(config)
    assert {found[0] for found, _ in plan.values() if found} == {"main"}
    assert not any(continued for (name, _), (_, continued) in plan.items() if name == "short")


def run(study, name, results, csvs, lineage=None):
    experiment = study.experiment(name)
    cells = [c for c in experiment.cells() if c.optimizer == "adam" and c.rho > 0][:4]
    shorter_runs, continued = lineage.for_job(experiment, cells) if lineage else ({}, set())
    outputs = [wiring.metrics_path(experiment, str(results), c) for c in cells]
    job = jobs.TrainJob(experiment, cells, outputs, str(results), *csvs, shorter_runs=shorter_runs, continued=continued)
    jobs.run_train_job(job)
    return [json.loads(open(o).read()) for o in outputs]


def test_a_job_going_on_from_stored_states_writes_a_whole_runs_numbers(repo_root, tmp_path, split_csvs, caplog):
    config = yaml.safe_load((repo_root / "tests/configs/tiny.yaml").read_text())  # second_chance: 4 SAM epochs, main 2
    study = Study.from_config(config)
    lineage = Lineage(study)
    whole = run(study, "second_chance", tmp_path / "whole", split_csvs)  # no shorter run to go on from
    run(study, "main", tmp_path / "on", split_csvs, lineage)
    store = CellStore(tmp_path / "on" / "store")
    assert len(list(store.root.glob("*/*.state.pt"))) == 4  # main kept the states second_chance needs
    with caplog.at_level(logging.INFO, logger="genboost"):
        resumed = run(study, "second_chance", tmp_path / "on", split_csvs, lineage)
    assert "4 of them go on from the end of a shorter run (epoch 2)" in caplog.text
    assert [r["resumed_from_epoch"] for r in resumed] == [2] * 4
    assert [r["resumed_from_epoch"] for r in whole] == [None] * 4
    numbers = ("test_mse", "train_mse", "curve", "steps")
    for a, b in zip(whole, resumed, strict=True):
        assert {k: a[k] for k in numbers} == {k: b[k] for k in numbers}
        assert same_weights(tmp_path / "whole", a, tmp_path / "on", b)


def same_weights(results_a, a: dict, results_b, b: dict) -> bool:
    """Whether two records' stored trained weights are bit-identical."""
    hidden, dtype = a["config"]["hidden"], a["config"]["dtype"]
    wa = CellStore(results_a / "store").get_weights(a["store_key"], hidden, dtype)
    wb = CellStore(results_b / "store").get_weights(b["store_key"], hidden, dtype)
    return all(torch.equal(x, y) for pa, pb in zip(wa, wb, strict=True) for x, y in zip(pa, pb, strict=True))


def test_a_damaged_state_is_ignored_and_the_cell_trains_from_the_start(tmp_path):
    store = CellStore(tmp_path)
    store.put_state("ab" * 32, {"epoch": 1, "steps": 7})
    assert store.get_state("ab" * 32)["steps"] == 7
    store.state_path("ab" * 32).write_bytes(b"not a torch file")
    assert store.get_state("ab" * 32) is None
    assert store.get_state("cd" * 32) is None


def test_a_state_that_does_not_fit_its_cell_is_not_used_and_the_cell_trains_from_the_start(
    repo_root, tmp_path, split_csvs, caplog
):
    config = yaml.safe_load((repo_root / "tests/configs/tiny.yaml").read_text())
    study = Study.from_config(config)
    lineage = Lineage(study)
    whole = run(study, "second_chance", tmp_path / "whole", split_csvs)
    run(study, "main", tmp_path / "on", split_csvs, lineage)
    path = sorted(CellStore(tmp_path / "on" / "store").root.glob("*/*.state.pt"))[0]
    state = torch.load(path, weights_only=True)
    state["stack"][1] = state["stack"][1][:, :1]  # a [1, 1] bias: copy_ would broadcast it over the cell's [1, 16]
    torch.save(state, path)
    with caplog.at_level(logging.INFO, logger="genboost"):
        resumed = run(study, "second_chance", tmp_path / "on", split_csvs, lineage)
    assert f"store entry {path} not used: its 'stack' tensors are not" in caplog.text
    assert "3 of them go on from the end of a shorter run" in caplog.text
    assert sorted(r["resumed_from_epoch"] or 0 for r in resumed) == [0, 2, 2, 2]
    numbers = ("test_mse", "train_mse", "curve", "steps")
    for a, b in zip(whole, resumed, strict=True):
        assert {k: a[k] for k in numbers} == {k: b[k] for k in numbers}
        assert same_weights(tmp_path / "whole", a, tmp_path / "on", b)
