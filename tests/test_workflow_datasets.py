"""The real Snakefile on a tiny study of the anes96 dataset, which no code knows: only its config entry."""

from __future__ import annotations

import copy
import json

import pandas as pd
import pytest
from workflow_helpers import drawn_png, make_workdir, planned, read_config, snakemake, write_config

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def anes96_run(tmp_path_factory, obesity_csv, anes96_csv):
    def edit(config):
        # a table per optimizer and rho, two seeds for the summary: one lr and one wd are enough (8 models, not 32)
        grid = {"optimizers": ["sgd", "adam"], "lrs": [2e-2], "wds": [0], "rhos": [0, 0.05], "seeds": [0, 1]}
        config["experiments"] = {
            "anes96": {**grid, "enabled": True, "dataset": "anes96", "reference_experiment": "none"}
        }

    workdir = make_workdir(tmp_path_factory.mktemp("anes96"), obesity_csv, edit)
    snakemake(workdir)
    return workdir


def test_anes96_runs_end_to_end_on_its_own_split(anes96_run, anes96_csv):
    results = anes96_run / "results"
    assert (anes96_run / "resources/anes96/anes96.csv").read_bytes() == anes96_csv.read_bytes()
    assert not (anes96_run / "resources/obesity").exists(), "an unused dataset is not fetched"
    (manifest_path,) = (results / "data").glob("*/manifest.json")
    manifest = json.loads(manifest_path.read_text())
    assert manifest["dataset"] == "anes96" and manifest["rows"]["total"] == 944 and len(manifest["features"]) == 8
    cells = pd.read_csv(results / "anes96/cells.csv")
    assert len(cells) == 8 and cells["test_mse"].notna().any()
    test_labels = pd.read_csv(manifest_path.with_name("test.csv"))["label"]
    relative = cells["test_mse"] / test_labels.var(ddof=0)  # 1 - R^2 on the test split
    assert ((cells["test_mse_rel"] - relative).abs() <= 1e-12 * relative).all() and relative.notna().any()
    accuracy = cells["test_accuracy"].dropna()
    assert len(accuracy) and accuracy.between(0, 1).all()
    tables = {p.name for p in (results / "anes96/tables").glob("*.csv")}
    assert tables == {f"optimizer={o}_rho={r}.csv" for o in ("adam", "sgd") for r in ("0", "0.05")}
    drawn_png(results / "anes96/figures/heatmap.png")
    assert "anes96" in (results / "summary.md").read_text()
    assert not (results / "anes96/vs_talk.md").exists(), "reference_experiment none: not compared with the talk"


def test_editing_the_dataset_entry_reruns_its_preprocessing_and_cells(anes96_run):
    config = read_config(anes96_run)
    original = copy.deepcopy(config)
    config["datasets"]["anes96"]["drop"] = ["vote", "popul"]
    config["datasets"]["obesity"]["drop"] = []  # no experiment reads it: nothing to rerun
    write_config(anes96_run, config)
    try:
        jobs = planned(anes96_run)
    finally:
        write_config(anes96_run, original)
    assert {"preprocess", "train_anes96", "aggregate_anes96", "summary"} <= set(jobs)
    assert not [rule for rule in jobs if rule.startswith("download")], jobs
    assert planned(anes96_run) == {}, "the original entry is up to date again"


def test_a_failed_download_keeps_the_file_it_found(tmp_path, obesity_csv):
    """A CSV already in resources/ (put there by hand, or fetched for another results folder) survives a download
    job that fails: Snakemake deletes a failed job's outputs, so the rule marks its output update()."""

    def edit(config):
        config["datasets"]["obesity"]["local_copy"] = str(tmp_path / "nowhere.csv")  # the job will fail

    workdir = make_workdir(tmp_path / "work", obesity_csv, edit)
    target = workdir / "resources" / "obesity" / obesity_csv.name
    target.parent.mkdir(parents=True)
    target.write_bytes(obesity_csv.read_bytes())
    proc = snakemake(workdir, str(target.relative_to(workdir)), "--forcerun", "download_obesity", check=False)
    assert proc.returncode != 0 and "nowhere.csv" in proc.stdout + proc.stderr, proc.stderr[-2000:]
    assert target.read_bytes() == obesity_csv.read_bytes(), "the file the job did not write is kept, unchanged"
