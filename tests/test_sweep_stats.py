"""A swept setting in the tables, the statistics, the figures and the summary, on synthetic cells."""

import itertools
import json
import math

import numpy as np
import pandas as pd
import pytest
from workflow_helpers import job_files, repo_config

from genboost import wiring
from genboost.analysis import figures, tables
from genboost.analysis.stats import cell_stats, config_columns, effect_verdict, factors, paired, sweep_axes
from genboost.analysis.stats_report import stats_markdown
from genboost.compare import summary
from genboost.config.study import Experiment, Study

LRS, WDS, RHOS, SEEDS, BATCHES = [1e-3, 1e-2], [0.0, 1e-3], [0.0, 0.05], range(6), [16, 32, 64]


def synthetic(batch_effect=0.001, sam_effect=0.0, noise=0.002, experiment="swept", seed=0):
    """Test MSE = a per-seed offset + batch_effect per unit of batch size + sam_effect + noise."""
    rng = np.random.default_rng(seed)
    offset = rng.normal(0, 0.05, len(SEEDS))
    rows = []
    for opt, lr, wd, rho, b, s in itertools.product(["sgd", "adam"], LRS, WDS, RHOS, BATCHES, SEEDS):
        mse = 1.0 + offset[s] + batch_effect * b + sam_effect * (rho > 0) + rng.normal(0, noise)
        coordinates = dict(experiment=experiment, optimizer=opt, lr=lr, wd=wd, rho=rho, seed=s, batch_size=b)
        rows.append(
            dict(**coordinates, epochs=10, test_mse=mse, train_mse=mse - 0.2, diverged=False, shuffle_labels=False)
        )
    return pd.DataFrame(rows)


def unswept(experiment="main"):
    """Cells of an experiment that sweeps nothing: no batch_size column (as in its cells.csv)."""
    cells = synthetic(experiment=experiment, seed=1)
    return cells[cells.batch_size == 32].drop(columns="batch_size")


def test_a_swept_column_is_an_axis_and_a_constant_one_is_not():
    cells = synthetic()
    assert sweep_axes(cells) == ["batch_size"] and config_columns(cells)[-1] == "batch_size"
    assert sweep_axes(cells.assign(momentum=0.9)) == ["batch_size"]  # the same in every model: no axis
    assert sweep_axes(unswept()) == [] and factors(unswept()) == ("sam", "wd", "optimizer")
    both = pd.concat([unswept(), cells], ignore_index=True)  # main's batch_size is empty there
    assert sweep_axes(both) == ["batch_size"] and factors(both)[-1] == "batch_size"


def test_configurations_of_different_batch_sizes_are_never_averaged():
    both = pd.concat([unswept(), synthetic(batch_effect=0.01)], ignore_index=True)
    s = cell_stats(both)
    assert (s["n"] == len(SEEDS)).all() and len(s) == 8 * 2 + 8 * 2 * 3
    swept = s[s.experiment == "swept"].groupby("batch_size")["mean"].mean()
    assert swept[64] - swept[16] == pytest.approx(0.48, abs=0.01)
    assert s[s.experiment == "main"]["batch_size"].isna().all()


def test_batch_size_comparisons_pair_every_other_setting_and_seed():
    result = paired(synthetic(batch_effect=0.001), "batch_size")
    labels = ["batch_size=16 vs batch_size=32", "batch_size=16 vs batch_size=64", "batch_size=32 vs batch_size=64"]
    assert sorted(set(result["comparison"])) == labels
    overall = result[(result.comparison == labels[1]) & (result.optimizer == "all") & (result.lrs == "all")].iloc[0]
    assert overall["n_pairs"] == 2 * len(LRS) * len(WDS) * len(RHOS) * len(SEEDS)
    assert overall["mean_diff"] == pytest.approx(-0.048, abs=0.002)
    assert effect_verdict(overall) == "supported: lowers test MSE"
    flipped = paired(synthetic(batch_effect=-0.001), "batch_size")
    assert all(effect_verdict(r) == "supported: raises test MSE" for _, r in flipped.iterrows())
    none = paired(synthetic(batch_effect=0.0, noise=0.01, seed=3), "batch_size")
    assert sum(effect_verdict(r).startswith("supported") for _, r in none.iterrows()) <= 0.1 * len(none)


def test_sam_is_paired_within_each_batch_size():
    cells = synthetic(batch_effect=0.01, sam_effect=-0.02)
    r = paired(cells, "sam").query("optimizer == 'all' and lrs == 'all'").iloc[0]
    # pairs across batch sizes would carry their 0.16-0.48 differences into the spread
    assert r["n_pairs"] == 2 * len(LRS) * len(WDS) * len(BATCHES) * len(SEEDS)
    assert r["mean_diff"] == pytest.approx(-0.02, abs=0.002) and r["ci_high"] - r["ci_low"] < 0.005


def test_a_setting_that_is_not_swept_is_no_factor():
    with pytest.raises(ValueError, match="a setting the cells sweep \\[\\], got 'batch_size'"):
        paired(unswept(), "batch_size")


def test_markdown_names_the_swept_axis_and_its_comparisons():
    text = stats_markdown(pd.concat([unswept(), synthetic()], ignore_index=True))
    main, swept = text.split("### main")[1].split("### swept")
    assert "batch_size" not in main
    assert "- Axes besides optimizer, lr, wd, rho and seed: batch_size (16, 32, 64)" in swept
    assert "batch_size=16 vs batch_size=64 (all optimizers, all lrs): supported: lowers test MSE" in swept
    assert ", batch_size=16: test MSE" in swept  # the best configurations name their batch size


def write_records(tmp_path, experiment: Experiment, mse) -> list[str]:
    """A metrics.json per cell of `experiment` with test MSE `mse(cell)`."""
    paths = []
    for cell in experiment.cells():
        path = tmp_path / wiring.metrics_path(experiment, "results", cell)
        path.parent.mkdir(parents=True, exist_ok=True)
        record = dict(test_mse=mse(cell), train_mse=mse(cell) / 2, test_accuracy=0.5, train_accuracy=0.6,
                      diverged=False, diverged_step=None, epochs=cell.epochs, steps=10, config=cell.to_dict(),
                      flatness={"hessian_top_eig": float(cell.batch_size)})  # fmt: skip
        path.write_text(json.dumps(record))
        paths.append(str(path))
    return paths


def experiment_of(sweep: dict) -> Experiment:
    spec = {"optimizers": ["sgd"], "lrs": [1e-3, 1e-2], "wds": [0], "rhos": [0], "seeds": [0, 1], "sweep": sweep}
    config = {"train": {"batch_size": 32, "epochs": 4, "sam_epochs": 2, "t_max": 4, "momentum": 0, "device": "cpu"},
              "model": {"hidden": [16]}, "preprocess": {}, "experiments": {"swept": spec},
              "datasets": repo_config()["datasets"]}  # fmt: skip
    return Study.from_config(config).experiment("swept")


def test_cells_csv_and_one_table_per_batch_size(tmp_path):
    exp = experiment_of({"batch_size": [16, 64]})
    paths = write_records(tmp_path, exp, lambda c: c.batch_size + 100 * c.lr + c.seed)
    table_levels = {str(tmp_path / p): levels for p, levels in wiring.tables("results", exp).items()}
    jobs = job_files(paths, tmp_path)
    tables.write_experiment_outputs("swept", jobs, str(tmp_path / "cells.csv"), table_levels, sweep=["batch_size"])
    cells = pd.read_csv(tmp_path / "cells.csv")
    assert list(cells.columns[:7]) == ["experiment", "optimizer", "lr", "wd", "rho", "seed", "batch_size"]
    assert sorted(cells.batch_size.unique()) == [16, 64] and len(cells) == 8
    for b in (16, 64):
        csv = pd.read_csv(tmp_path / f"results/swept/tables/optimizer=sgd_rho=0_batch_size={b}.csv")
        assert csv["mean_wd=0"].tolist() == pytest.approx([b + 0.1 + 0.5, b + 1 + 0.5])
        md = (tmp_path / f"results/swept/tables/optimizer=sgd_rho=0_batch_size={b}.md").read_text()
        assert md.startswith(f"### swept: SGD, no SAM, batch_size={b}: test MSE")


def test_hidden_widths_are_a_column_of_path_text(tmp_path):
    exp = experiment_of({"hidden": [[16], [8, 8]]})
    paths = write_records(tmp_path, exp, lambda c: float(len(c.hidden)))
    cells = tables.cells_frame("swept", tables.read_job_records(job_files(paths, tmp_path)), sweep=["hidden"])
    assert set(cells["hidden"]) == {"16", "8x8"} and sweep_axes(cells) == ["hidden"]
    assert set(tables.select(cells, {"hidden": "8x8"})["test_mse"]) == {2.0}
    assert wiring.tables("r", exp)["r/swept/tables/optimizer=sgd_rho=0_hidden=8x8.md"] == {
        "optimizer": "sgd", "rho": "0", "hidden": "8x8"}  # fmt: skip


def test_figures_have_a_row_of_panels_per_batch_size(tmp_path, monkeypatch):
    monkeypatch.setattr(figures, "save", lambda *_: None)  # drawn, not saved: tests/test_figures.py checks the files
    cells = synthetic().query("batch_size != 32")  # two batch sizes show the rows with fewer panels to draw
    batches = 2
    fig = figures.heatmap_grid(cells, tmp_path / "h.png", tmp_path / "h.pdf")
    panels = [ax for ax in fig.axes if ax.images]
    assert len(panels) == 2 * batches * len(RHOS)
    titles = {ax.get_title() for ax in panels}
    assert "SGD, SAM ρ=0.05, batch_size=16" in titles and "ADAM, no SAM, batch_size=64" in titles
    boxed = [ax for ax in panels if any(p.get_gid() == "best" for p in ax.patches)]
    assert [ax.get_title() for ax in boxed] == [figures.best_configurations(cells)[0]["label"].split(", lr=")[0]]
    fig = figures.lr_curves(cells, tmp_path / "l.png", tmp_path / "l.pdf")
    assert len([ax for ax in fig.axes if ax.lines]) == 2 * batches * len(RHOS)
    assert all(b["levels"] == {"batch_size": 16} for b in figures.best_configurations(cells))


def test_the_summary_names_batch_size_in_the_best_configuration():
    cells = synthetic(batch_effect=0.001, sam_effect=-0.01)
    text = summary.summarize(pd.concat([unswept(), cells], ignore_index=True), ["main", "swept"], baseline="main")
    assert "- Best of swept: " in text and "SAM rho=0.05, batch_size=16, 10 epochs" in text
    alone = summary.summarize(cells, ["swept"])  # swept as the base: the effects at the best's batch size
    assert "### SGD at lr=" in alone and ", batch_size=16\n" in alone
    assert not math.isnan(float(alone.split("lowers the test MSE by ")[1].split()[0]))
