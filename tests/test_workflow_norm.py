"""The real Snakefile on a tiny study that sweeps model.norm: the plain models taken from main's store entries,
the norm's columns in cells.csv, every measure of the normed models, the summary's wd_and_norm section (how flatness
moves with decay, per norm)."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from workflow_helpers import make_workdir, snakemake

from genboost.measures import registry

pytestmark = pytest.mark.slow

GRID = {"optimizers": ["sgd"], "lrs": [2e-2], "wds": [0, 1e-3], "rhos": [0], "seeds": [0, 1]}


@pytest.fixture(scope="module")
def norm_run(tmp_path_factory, obesity_csv):
    def edit(config):
        config["model"]["hidden"] = [16, 8]
        config["experiments"] = {
            "main": GRID,
            "wd_and_norm": {**GRID, "reference_experiment": "none", "sweep": {"norm": ["none", "layer"]}},
        }

    workdir = make_workdir(tmp_path_factory.mktemp("norm"), obesity_csv, edit)
    snakemake(workdir)
    return workdir


def records(workdir, experiment: str) -> dict:
    paths = (workdir / f"results/{experiment}/runs").rglob("metrics.json")
    return {str(p.relative_to(workdir / f"results/{experiment}/runs")): json.loads(p.read_text()) for p in paths}


def test_the_plain_models_are_mains_and_the_normed_ones_new(norm_run):
    main, swept = records(norm_run, "main"), records(norm_run, "wd_and_norm")
    assert len(main) == 4 and len(swept) == 8
    for path, record in main.items():
        head, seed = path.rsplit("/seed=", 1)
        plain = swept[f"{head}/norm=none/seed={seed}"]
        assert plain["store_key"] == record["store_key"] and plain["test_mse"] == record["test_mse"]
        normed = swept[f"{head}/norm=layer/seed={seed}"]
        assert normed["config"]["norm"] == "layer" and normed["test_mse"] != record["test_mse"]
        assert normed["curve"][-1]["eff_lr_l2"] == normed["layers"]["eff_lr_l2"] > 0


def test_cells_csv_has_norm_and_each_layers_weight_norm_and_effective_lr(norm_run):
    cells = pd.read_csv(norm_run / "results/wd_and_norm/cells.csv")
    assert sorted(cells["norm"].unique()) == ["layer", "none"]
    normed, plain = cells[cells["norm"] == "layer"], cells[cells["norm"] == "none"]
    for column in ("weight_norm_l1", "weight_norm_l2"):
        assert cells[column].notna().all()
    assert normed["eff_lr_l1"].notna().all() and plain["eff_lr_l1"].isna().all()
    # every model, with a norm or not, gets every measure (they all run the model's one forward pass)
    measures = [c for c in cells.columns if registry.measure_of(c) is not None and not c.startswith("eff_lr_l")]
    assert {"hessian_top_eig", "pacbayes_flatness", "weight_norm"} <= set(measures)
    assert any(c.startswith("sharpness_r") for c in measures)
    assert normed[measures].notna().all().all() and plain[measures].notna().all().all()
    summary = (norm_run / "results/summary.md").read_text()
    assert "## wd_and_norm: does weight decay still help with LayerNorm" in summary
    assert "**Verdict (norm=layer, SGD): weight decay lowered test MSE at " in summary
    normed_section = summary.split("#### norm=layer, SGD")[1].split("####")[0]
    assert "- Flatness (top Hessian eigenvalue), wd=0.001 vs wd=0: " in normed_section
    assert " wd x measure pairs (sharper at " in normed_section
