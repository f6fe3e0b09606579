"""The real Snakefile on a tiny study that sweeps batch size: paths, cells, tables, summary, incremental reruns."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from workflow_helpers import changed_plan, make_workdir, planned, snakemake, train_outputs

pytestmark = pytest.mark.slow

RUNS = "results/main/runs/optimizer=sgd/lr=0.02/wd=0/rho=0"


@pytest.fixture(scope="module")
def swept_run(tmp_path_factory, obesity_csv):
    def edit(config):
        config["experiments"] = {
            "main": {
                "optimizers": ["sgd"],
                "lrs": [2e-2],
                "wds": [0],
                "rhos": [0],
                "seeds": [0, 1],
                "sweep": {"batch_size": [16, 64]},
            }  # fmt: skip
        }

    workdir = make_workdir(tmp_path_factory.mktemp("swept"), obesity_csv, edit)
    snakemake(workdir)
    return workdir


def test_both_batch_sizes_train_under_their_own_path_level(swept_run):
    files = sorted((swept_run / "results/main/runs").rglob("metrics.json"))
    assert [str(p.relative_to(swept_run)) for p in files] == [
        f"{RUNS}/batch_size={b}/seed={s}/metrics.json" for b in (16, 64) for s in (0, 1)
    ]
    records = {(r["config"]["batch_size"], r["config"]["seed"]): r for r in (json.loads(p.read_text()) for p in files)}
    assert set(records) == {(16, 0), (16, 1), (64, 0), (64, 1)}
    # 1,688 training rows: 106 steps an epoch at 16, 27 at 64; the tiny study trains 4 epochs
    assert records[(16, 0)]["steps"] == 4 * 106 and records[(64, 0)]["steps"] == 4 * 27
    assert records[(16, 0)]["test_mse"] != records[(64, 0)]["test_mse"]


def test_cells_tables_and_summary_name_batch_size_as_an_axis(swept_run):
    cells = pd.read_csv(swept_run / "results/main/cells.csv")
    assert list(cells.columns[5:7]) == ["seed", "batch_size"] and sorted(cells["batch_size"]) == [16, 16, 64, 64]
    for b in (16, 64):
        table = pd.read_csv(swept_run / f"results/main/tables/optimizer=sgd_rho=0_batch_size={b}.csv")
        assert table["mean_wd=0"].item() == pytest.approx(cells[cells.batch_size == b]["test_mse"].mean(), rel=1e-5)
        md = (swept_run / f"results/main/tables/optimizer=sgd_rho=0_batch_size={b}.md").read_text()
        assert f"SGD, no SAM, batch_size={b}: test MSE" in md
    summary = (swept_run / "results/summary.md").read_text()
    assert "- Axes besides optimizer, lr, wd, rho and seed: batch_size (16, 64)" in summary
    assert "batch_size=16 vs batch_size=64" in summary and "## main: do smaller batches and larger steps" in summary
    assert (swept_run / "results/main/figures/heatmap.png").is_file()
    # the talk's tables hold one batch size: a swept experiment is not compared with them, and the summary says so
    assert not (swept_run / "results/main/vs_talk.md").exists()
    talk = summary.split("## The talk's conclusions, per setup\n\n", 1)[1]
    assert talk.startswith("No experiment to check them on") and "- Not checked on main: it sweeps batch_size." in talk


def test_a_new_batch_size_plans_only_its_models(swept_run, tmp_path):
    assert planned(swept_run) == {}

    def third_batch_size(config):
        config["experiments"]["main"]["sweep"]["batch_size"] = [16, 32, 64]

    jobs = changed_plan(swept_run, tmp_path / "run", third_batch_size)  # in a copy: the shared run stays as it is
    assert train_outputs(jobs) == [
        "results/main/jobs/train/optimizer=sgd/rho=0/batch_size=32/part=1of1.json"
    ]  # seeds 0, 1
    assert set(jobs) == {
        "train_main", "measure_main", "aggregate_main", "figures_main", "measures_figure_main", "summary", "all"
    }  # fmt: skip
