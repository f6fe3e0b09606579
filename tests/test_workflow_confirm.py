"""The confirmation stage run end to end on a small study (issue 23): planned by a checkpoint, each selected
configuration trained once on the fresh seeds, reported, and incremental like the rest of the pipeline."""

from __future__ import annotations

import re
import shutil
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pandas as pd
import pytest
from workflow_helpers import REPO_ROOT, copy_run, make_workdir, planned, read_config, snakemake, write_config

from genboost.compare import report, talk

pytestmark = pytest.mark.slow

FRESH = "results/main/confirm/fresh.csv"
CONFIG = ["experiment", "optimizer", "lr", "wd", "rho"]


def fresh_logs(run: Path) -> dict[str, str]:
    """Each fresh job's log (by its path under results/logs) -> what its job says it trained and reused."""
    logs = sorted((run / "results" / "logs").glob("*/confirm/**/*.log"))
    said = {str(p.relative_to(run / "results" / "logs")): p.read_text() for p in logs}
    return {k: re.findall(r"trained \d+, reused \d+", v)[-1] for k, v in said.items()}


@pytest.fixture(scope="module")
def dry_runs(tiny_run, tmp_path_factory, obesity_csv) -> dict[str, dict]:
    """What three dry runs plan, run side by side (each mostly imports): a fresh study under --profile slurm, and
    the finished tiny run with another margin and with the stage switched off (each in its own copy)."""
    fresh = make_workdir(tmp_path_factory.mktemp("slurm"), obesity_csv, lambda c: c.update(confirm={"seeds": 5}))
    shutil.copytree(REPO_ROOT / "slurm", fresh / "slurm")
    runs = {
        "slurm": (fresh, ("--profile", "slurm")),
        **{name: (copy_run(tiny_run, tmp_path_factory.mktemp(name) / "run"), ("--config", f"confirm={setting}"))
           for name, setting in (("margin", "{seeds: 5, margin: 0.05}"), ("off", "null"))},
    }  # fmt: skip
    with ThreadPoolExecutor(max_workers=len(runs)) as pool:
        done = {name: pool.submit(planned, workdir, *args) for name, (workdir, args) in runs.items()}
        return {name: future.result() for name, future in done.items()}


def test_the_dry_run_plans_the_checkpoint_also_on_slurm(dry_runs):
    jobs = dry_runs["slurm"]
    assert {"select", "confirm", "vs_talk", "summary"} <= set(jobs), sorted(jobs)
    assert jobs["select"] == ["results/main/confirm/selected.csv"]


def test_each_selected_configuration_trains_once_on_the_fresh_seeds(tiny_run):
    selected = pd.read_csv(tiny_run / "results/main/confirm/selected.csv")
    assert {"C2", "C3", "C4"} <= set(selected["conclusion"])  # the tiny grid has no lr 3e-3: C1 selects nothing
    configs = selected.drop_duplicates(CONFIG)
    fresh = pd.read_csv(tiny_run / FRESH)
    assert len(fresh) == len(fresh.drop_duplicates([*CONFIG, "seed"])) == 5 * len(configs)  # each trains once
    assert sorted(fresh["seed"].unique()) == [1000, 1001, 1002, 1003, 1004]
    assert set(fresh["experiment"]) == {"main", "second_chance"}  # C4's side comes from the second chance
    assert set(fresh.loc[fresh["experiment"] == "second_chance", "epochs"]) == {4}  # its sam_epochs
    assert set(fresh_logs(tiny_run).values()) == {"trained 5, reused 0"}
    assert not list((tiny_run / "results/main/confirm").rglob("measures.json")), "no flatness measures"


def test_the_reports_give_the_confirmed_verdicts_beside_the_selections(tiny_run):
    for name in ("main", "second_chance"):
        text = (tiny_run / f"results/{name}/vs_talk.md").read_text()
        assert 0 < text.index("## Confirmed on 5 fresh seeds") < text.index(report.SELECTION)
        assert report.NOT_CONFIRMED not in text and "Margin m = " in text
    text = (tiny_run / "results/summary.md").read_text()
    assert text.index("### Confirmed on 5 fresh seeds") < text.index(talk.SELECTION + "\n")
    assert "The winner's curse:\n\n- main: " in text


@pytest.mark.parametrize("change", ["margin", "off"])
def test_a_new_margin_or_the_off_switch_retrains_nothing(dry_runs, change):
    """(A finished study plans nothing: tests/test_workflow.py's test_rerun_plans_nothing, on the same run.)"""
    assert set(dry_runs[change]) == {"vs_talk", "summary", "all"}


def test_more_seeds_and_a_new_selection_train_only_the_new_models(tiny_run, tmp_path):
    """Seeds 5 -> 6: one new model per configuration. The second chance's grid cut to the lr its pick does not
    have: C4 picks a configuration nothing picked before, which alone trains all its seeds."""
    run = copy_run(tiny_run, tmp_path / "run")
    before = pd.read_csv(run / "results/main/confirm/selected.csv")
    picked = before[(before["experiment"] == "second_chance")].iloc[0]
    config = read_config(run)
    config["confirm"]["seeds"] = 6
    grid = config["experiments"]["second_chance"]
    grid["lrs"] = [lr for lr in grid["lrs"] if float(lr) != picked["lr"]]
    write_config(run, config)
    started = time.time()
    snakemake(run, FRESH)
    after = pd.read_csv(run / "results/main/confirm/selected.csv")
    new = after[(after["experiment"] == "second_chance")].iloc[0]
    assert new["lr"] != picked["lr"]
    logs = fresh_logs(run)
    fresh_main = {k: v for k, v in logs.items() if k.startswith("main/")}
    assert set(fresh_main.values()) == {"trained 1, reused 5"}
    new_log = next(k for k in logs if k.startswith("second_chance/") and f"lr={new['lr']:g}/" in k)
    assert logs[new_log] == "trained 6, reused 0"
    grid_logs = [p for p in (run / "results/logs/second_chance/train").rglob("*.log") if p.stat().st_mtime > started]
    assert grid_logs and all("trained 0, reused" in p.read_text() for p in grid_logs), "the grid's from the store"
    assert len(pd.read_csv(run / FRESH)) == 6 * len(
        after.drop_duplicates(["experiment", "optimizer", "lr", "wd", "rho"])
    )
