"""What an edit of a finished study plans, and a model trained alone against the same model in a pack: the real
Snakefile on conftest's two-model study (`unpacked_run`), shared and read-only; each test edits its own copy."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from workflow_helpers import (
    NUMBERS,
    append_code,
    changed_plan,
    copy_run,
    edited_copy,
    planned,
    snakemake,
    train_outputs,
)

pytestmark = pytest.mark.slow


def test_adding_an_lr_plans_only_the_new_cells(unpacked_run, tmp_path):
    jobs = changed_plan(unpacked_run, tmp_path / "run", lambda c: c["experiments"]["main"]["lrs"].append("3e-5"))
    assert train_outputs(jobs) == sorted(
        f"results/main/jobs/train/optimizer=sgd/lr=3e-05/wd=0/rho={rho}/seed=0/part=1of1.json" for rho in ("0", "0.05")
    )
    after = {"aggregate_main", "figures_main", "measures_figure_main", "vs_talk", "summary", "all"}
    assert set(jobs) == {"train_main", "measure_main", *after}  # the new models are measured too


def test_same_number_written_differently_plans_nothing(unpacked_run, tmp_path):
    assert changed_plan(unpacked_run, tmp_path / "run", lambda c: c["experiments"]["main"].update(lrs=["0.020"])) == {}


def test_changing_sam_epochs_plans_only_sam_cells(unpacked_run, tmp_path):
    jobs = changed_plan(unpacked_run, tmp_path / "run", lambda c: c["train"].update(sam_epochs=3))
    assert train_outputs(jobs) == ["results/main/jobs/train/optimizer=sgd/lr=0.02/wd=0/rho=0.05/seed=0/part=1of1.json"]


def test_a_cell_alone_equals_the_cell_in_a_pack(unpacked_run, tmp_path):
    """The shared run trains and measures each model in a job of its own. A copy with a second seed, packed by seed
    (tiny.yaml's pack) and its store emptied, trains and measures both seeds of each rho in one job: the seed-0
    models' numbers and measures are bit-identical to the ones alone."""

    def packed_by_seed(config):
        config["train"]["pack"] = ["lr", "wd", "seed"]
        config["experiments"]["main"]["seeds"] = [0, 1]

    run = edited_copy(unpacked_run, tmp_path / "run", packed_by_seed)
    shutil.rmtree(run / "results" / "store")  # nothing reused: every model is trained and measured again
    paths = [f"results/main/runs/optimizer=sgd/lr=0.02/wd=0/rho={rho}/seed=0/metrics.json" for rho in ("0", "0.05")]
    snakemake(run, "results/main/cells.csv")  # the train and measure jobs, not the figures and summary
    for path in paths:
        alone, packed = (json.loads((r / path).read_text()) for r in (unpacked_run, run))
        assert alone["pack_size"] == 1 and packed["pack_size"] == 2
        assert {k: alone[k] for k in NUMBERS} == {k: packed[k] for k in NUMBERS}
        measures = path.replace("metrics.json", "measures.json")
        assert json.loads((unpacked_run / measures).read_text()) == json.loads((run / measures).read_text())


def plan_after_editing(run: Path, copy: Path, module: str) -> dict:
    """What a dry run plans in a copy of `run` after a line of code is appended to genboost/<module>."""
    workdir = copy_run(run, copy)
    append_code(workdir / "genboost" / module)
    return planned(workdir)


@pytest.mark.parametrize("module", ["train/engine.py", "train/model.py", "data/tensors.py"])
def test_editing_training_code_plans_every_train_job(unpacked_run, tmp_path, module):
    assert len(train_outputs(plan_after_editing(unpacked_run, tmp_path / "run", module))) == 2


def test_editing_a_measure_plans_every_measure_job_and_no_training(unpacked_run, tmp_path):
    jobs = plan_after_editing(unpacked_run, tmp_path / "run", "measures/sharpness.py")
    assert train_outputs(jobs) == [] and len(jobs["measure_main"]) == 2


def test_editing_table_code_plans_no_training(unpacked_run, tmp_path):
    jobs = plan_after_editing(unpacked_run, tmp_path / "run", "analysis/tables.py")
    assert train_outputs(jobs) == [] and "aggregate_main" in jobs
