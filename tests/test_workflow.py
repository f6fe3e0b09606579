"""The real Snakefile end to end on a tiny study: outputs, incremental reruns, cell reuse.

The run (conftest's `tiny_run`) is shared and read-only: a test that edits a config, the code or
the results does so in its own copy (`copy_run`), so the tests pass in any order."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import scipy.stats
from workflow_helpers import (
    NUMBERS,
    changed_plan,
    copy_run,
    drawn_png,
    edited_copy,
    make_workdir,
    planned,
    read_config,
    snakemake,
    train_outputs,
    write_config,
)

pytestmark = pytest.mark.slow


def metrics_files(workdir: Path, experiment: str = "main") -> list[Path]:
    return sorted((workdir / "results" / experiment / "runs").rglob("metrics.json"))


def test_every_cell_has_metrics_with_provenance(tiny_run):
    files = metrics_files(tiny_run)
    assert len(files) == 2 * 2 * 2 * 2 * 2
    record = json.loads(files[0].read_text())
    for key in (
        "test_mse",
        "train_mse",
        "test_accuracy",
        "diverged",
        "epochs",
        "config",
        "wall_s",
        "device",
        "versions",
    ):
        assert key in record, key
    assert record["versions"]["torch"] and record["device"].startswith("cpu")
    # the path names the cell and the config inside agrees with it
    parts = dict(p.split("=") for p in files[0].parent.relative_to(tiny_run / "results/main/runs").parts)
    assert float(parts["lr"]) == record["config"]["lr"] and parts["optimizer"] == record["config"]["optimizer"]
    assert record["epochs"] == (2 if record["config"]["rho"] > 0 else 4)
    assert 0 <= record["test_accuracy"] <= 1 and record["test_mse"] > 0


def test_tables_match_cells(tiny_run):
    cells = pd.read_csv(tiny_run / "results/main/cells.csv")
    assert len(cells) == 32
    table = pd.read_csv(tiny_run / "results/main/tables/optimizer=adam_rho=0.05.csv")
    sel = cells[(cells.optimizer == "adam") & (cells.rho == 0.05) & (cells.lr == 0.02) & (cells.wd == 0.001)]
    row = table[table.lr == 0.02]
    assert row["mean_wd=0.001"].item() == pytest.approx(sel.test_mse.mean(), rel=1e-5)
    assert row["std_wd=0.001"].item() == pytest.approx(sel.test_mse.std(), rel=1e-5)
    half = scipy.stats.t.ppf(0.975, len(sel) - 1) * sel.test_mse.std() / len(sel) ** 0.5
    assert row["ci_low_wd=0.001"].item() == pytest.approx(sel.test_mse.mean() - half, rel=1e-5)
    assert row["ci_high_wd=0.001"].item() == pytest.approx(sel.test_mse.mean() + half, rel=1e-5)
    md = (tiny_run / "results/main/tables/optimizer=adam_rho=0.05.md").read_text()
    assert "| lr \\ wd" in md and f"{sel.test_mse.mean():.4f}" in md
    log = (tiny_run / "results/logs/main/aggregate.log").read_text()
    assert "main: wrote " in log and "cells.csv (32 models, from 4 train jobs) and 8 tables" in log


def test_summary_names_the_best_configuration(tiny_run):
    cells = pd.read_csv(tiny_run / "results/main/cells.csv")
    means = cells.groupby(["optimizer", "lr", "wd", "rho"]).test_mse.mean()
    opt, lr, wd, rho = means.idxmin()
    summary = (tiny_run / "results/summary.md").read_text()
    overall = next(line for line in summary.splitlines() if line.startswith("- Overall:"))
    assert f"{opt.upper()}, lr={lr:g}" in overall and f"{means.min():.4f}" in overall
    assert "## second_chance vs main" in summary


def test_flatness_curves_and_statistics_are_recorded(tiny_run):
    cells = pd.read_csv(tiny_run / "results/main/cells.csv")
    measures = ("pacbayes_flatness", "pacbayes_mag_flatness", "weight_norm", "dist_from_init")
    for col in ("hessian_top_eig", "sharpness_r0.05", "gap", *measures):
        assert cells[col].notna().all(), col
    assert (cells["pacbayes_flatness"] > 0).all() and (cells["dist_from_init"] > 0).all()
    assert (cells["gap"] - (cells["test_mse"] - cells["train_mse"])).abs().max() < 1e-9
    record = json.loads(metrics_files(tiny_run)[0].read_text())
    assert [p["epoch"] for p in record["curve"]] == list(range(2, record["epochs"] + 1, 2))
    assert record["curve"][-1]["test_mse"] == pytest.approx(record["test_mse"], rel=1e-6)
    summary = (tiny_run / "results/summary.md").read_text()
    assert "## Statistics" in summary and "Kendall" in summary
    assert "## Generalization measures: granulated Kendall coefficient" in summary and "pacbayes_flatness" in summary
    for figure in ("heatmap", "measures"):
        drawn_png(tiny_run / f"results/main/figures/{figure}.png")


def test_html_report_holds_tables_figures_and_summary(tiny_run, tmp_path):
    run = copy_run(tiny_run, tmp_path / "run")
    snakemake(run, "--report", "report.html")
    html = (run / "report.html").read_text()
    for name in ("heatmap.png", "lr_curves.png", "learning_curves.png", "summary.md", "optimizer=adam_rho=0.05.csv"):
        assert name in html, name


def test_rerun_plans_nothing(tiny_run, tmp_path):
    """Nor does a copy (`copy_run`), which the tests that change a run start from."""
    assert planned(tiny_run) == {}
    assert planned(copy_run(tiny_run, tmp_path / "run")) == {}


def test_the_experiments_order_plans_nothing(tiny_run, tmp_path):
    """--config puts the experiments it names first, and a config file may list them in any order: the order means
    nothing (the summary's baseline is config key baseline; a run goes on from the experiment it `continues`)."""
    run = copy_run(tiny_run, tmp_path / "run")
    assert planned(run, "--config", "experiments={second_chance: {continues: main}}") == {}
    config = read_config(run)
    config["experiments"] = dict(reversed(config["experiments"].items()))
    write_config(run, config)
    assert planned(run) == {}


def test_rerun_reuses_stored_cells(tiny_run, tmp_path):
    """Adding an lr retrains only the new cells: the packed jobs take their other cells from the store."""
    run = edited_copy(tiny_run, tmp_path / "run", lambda c: c["experiments"]["main"]["lrs"].append(3e-3))
    snakemake(run, "results/main/cells.csv")  # the train jobs and their table, not the figures and summary
    logs = "\n".join(p.read_text() for p in (run / "results/logs/main/train").rglob("*.log"))
    # four jobs (optimizer x rho), each with 2 wd x 2 seeds new cells and 8 stored ones
    assert logs.count("trained 4, reused 8") == 4, logs


def test_an_edit_of_both_a_run_and_what_goes_on_from_it_plans_both_at_once(tiny_run, tmp_path):
    """second_chance goes on from main's end states, so its train jobs wait for main's job files. An edit that
    changes the models of both (a train setting they share) plans both in one run, not main's alone with
    second_chance's left stale until the next run: Snakemake skips a job's own triggers where it follows a job that
    reruns through `ancient` inputs only (snakemake/snakemake#4166), so those inputs are plain. An edit of
    second_chance's own cells plans its jobs and none of main's."""
    jobs = changed_plan(tiny_run, tmp_path / "both", lambda c: c["train"].update(flush_denormal=False))
    assert {"train_main", "train_second_chance", "measure_second_chance"} <= set(jobs), jobs
    jobs = changed_plan(tiny_run, tmp_path / "own", lambda c: c["experiments"]["second_chance"].update(sam_epochs=3))
    assert "train_second_chance" in jobs and "train_main" not in jobs


def test_other_core_counts_plan_other_jobs_which_train_nothing(tiny_run, tmp_path):
    """Which models train together follows the core count (genboost/config/packing.py), their numbers never do: a
    run on other cores plans other jobs, which take every cell from the store. Both counts are planned; the run on
    4 cores stands for both (one run of the jobs and what follows them is most of this test's time)."""

    def one_pack(config):
        config["train"]["pack"] = ["optimizer", "lr", "wd", "rho", "seed"]  # main: one pack of 32 cells

    run = edited_copy(tiny_run, tmp_path / "run", one_pack)
    for cores in (2, 4):
        jobs = planned(run, "--cores", str(cores))
        parts = [f"results/main/jobs/train/part={i}of{cores}.json" for i in range(1, cores + 1)]
        assert [o for o in train_outputs(jobs) if o.startswith("results/main/")] == parts
    before = pd.read_csv(run / "results/main/cells.csv")
    snakemake(run, "--cores", "4", "results/main/cells.csv")  # what the test reads: no figures, summary
    logs = [p.read_text() for p in (run / "results/logs/main/train").glob("part=*of4.log")]
    assert len(logs) == 4 and all("trained 0, reused 8" in text for text in logs), logs
    numbers = [c for c in before.columns if c not in ("wall_s",)]
    pd.testing.assert_frame_equal(pd.read_csv(run / "results/main/cells.csv")[numbers], before[numbers])


def test_invalid_config_fails_before_any_job(tmp_path, obesity_csv):
    workdir = make_workdir(tmp_path, obesity_csv, lambda c: c["train"].update(batch_size=0))
    proc = snakemake(workdir, check=False)
    assert proc.returncode != 0
    assert "batch_size" in proc.stdout + proc.stderr and not (workdir / "results").exists()


def variant(config, name: str, **overrides) -> None:
    """Add a variant of the tiny study's main experiment."""
    config["experiments"][name] = {**config["experiments"]["main"], "reference_experiment": "main", **overrides}


def test_a_preprocessing_variant_plans_its_own_split_and_cells_only(tiny_run, tmp_path):
    jobs = changed_plan(
        tiny_run, tmp_path / "run", lambda c: variant(c, "standardized", preprocess={"scale": "standard"})
    )
    assert set(jobs) - {"all"} == {
        "preprocess",
        "train_standardized",
        "measure_standardized",
        "aggregate_standardized",
        "figures_standardized",
        "measures_figure_standardized",
        "vs_talk",
        "summary",
        # the variant is checked against the talk's conclusions, so it is confirmed: its selection (a checkpoint,
        # whose fresh jobs are planned once it has run) and the fresh models' file
        "select",
        "confirm",
    }
    (train_csv,) = [o for o in jobs["preprocess"] if o.endswith("train.csv")]
    assert train_csv.startswith("results/data/") and train_csv not in str(sorted((tiny_run / "results/data").iterdir()))
    assert len(train_outputs(jobs)) == 4  # optimizer x rho, 8 cells each


def test_an_sgd_momentum_variant_trains_only_its_sgd_cells(tiny_run, tmp_path):
    """Adam does not read SGD's momentum: the variant's Adam cells come from the store, trained by main."""
    run = edited_copy(tiny_run, tmp_path / "run", lambda c: variant(c, "sgd_momentum", momentum=0.5))
    snakemake(run, "results/sgd_momentum/cells.csv")
    logs = {str(p): p.read_text() for p in (run / "results/logs/sgd_momentum/train").rglob("*.log")}
    assert len(logs) == 4
    for path, text in logs.items():
        expected = "trained 8, reused 0" if "optimizer=sgd" in path else "trained 0, reused 8"
        assert expected in text, (path, text)
    cells = pd.read_csv(run / "results/sgd_momentum/cells.csv")
    assert set(cells["optimizer"]) == {"sgd", "adam"}


def test_a_deleted_model_comes_back_when_named(tiny_run, tmp_path):
    """The README's recipe: name a model's metrics.json to rebuild it (from the store); delete its store entry
    as well to train it again."""
    run = copy_run(tiny_run, tmp_path / "run")
    path = run / "results/main/runs/optimizer=sgd/lr=0.02/wd=0/rho=0/seed=1/metrics.json"
    original = json.loads(path.read_text())
    assert planned(run, str(path.relative_to(run))) == {}  # written by its train job: nothing to do
    path.unlink()
    assert planned(run) == {}  # Snakemake sees the tables up to date: the file must be asked for
    snakemake(run, str(path.relative_to(run)))
    assert json.loads(path.read_text()) == original
    key = original["store_key"]
    (run / "results/store" / key[:2] / f"{key}.json").unlink()
    path.unlink()
    snakemake(run, str(path.relative_to(run)))
    retrained = json.loads(path.read_text())
    assert {k: retrained[k] for k in NUMBERS} == {k: original[k] for k in NUMBERS}
    log = (run / "results/logs/main/model/optimizer=sgd/lr=0.02/wd=0/rho=0/seed=1.log").read_text()
    assert "trained 1, reused 0" in log  # alone, to the numbers it had in its pack


@pytest.mark.parametrize(
    "bad",
    [
        # the schema's checks report every problem at once: one dry run for all of them
        {("train", "momentum"): -1, ("train", "adam_betas"): [1.0, 0.999], ("analysis", "sharpness_radii"): [-0.01]},
        {("train", "adam_eps"): ".nan"},  # found after the schema's checks (a non-finite number)
    ],
    ids=["schema", "not finite"],
)
def test_bad_values_fail_the_dry_run_naming_each_key(tmp_path, obesity_csv, bad):
    def edit(config):
        for (section, key), value in bad.items():
            config[section][key] = value

    proc = snakemake(make_workdir(tmp_path, obesity_csv, edit), "-n", check=False)
    said = proc.stdout + proc.stderr
    assert proc.returncode != 0 and [key for _, key in bad if key not in said] == []


def diverging_study(config, results: str = "results") -> None:
    """Two SGD models at lr 50: both diverge."""
    config["results"] = results
    config["train"]["curve_every"] = 2
    config["analysis"] = {"sharpness_radii": [0.05], "hessian_iters": 2}
    config["experiments"] = {"main": {"optimizers": ["sgd"], "lrs": [50], "wds": [0], "rhos": [0, 0.05], "seeds": [0]}}


def test_a_study_where_every_model_diverges_writes_its_summary_and_figures(tmp_path, obesity_csv):
    """Also in a results folder written with a leading ./ and a trailing / (tests/test_study.py has each form)."""
    workdir = make_workdir(tmp_path, obesity_csv, lambda c: diverging_study(c, "./out/"))
    snakemake(workdir)
    cells = pd.read_csv(workdir / "out/main/cells.csv")
    assert cells["diverged"].all()
    assert "Every model diverged" in (workdir / "out/summary.md").read_text()
    drawn_png(workdir / "out/main/figures/heatmap.png")
    assert len(list((workdir / "out/main/runs").rglob("metrics.json"))) == 2 and not (workdir / "results").exists()


def test_a_raw_csv_put_by_hand_with_other_content_is_refused(tmp_path, obesity_csv):
    def edit(config):
        config["datasets"]["obesity"]["local_copy"] = None  # the CSV is where the download would put it

    workdir = make_workdir(tmp_path, obesity_csv, edit)
    raw = workdir / "resources" / "obesity" / obesity_csv.name
    raw.parent.mkdir(parents=True)
    raw.write_text(obesity_csv.read_text().replace("Female", "Male", 1))
    proc = snakemake(workdir, check=False)
    said = proc.stdout + proc.stderr
    assert proc.returncode != 0 and "checksum mismatch" in said and "datasets.obesity.sha256" in said
    assert not (workdir / "results" / "data").exists() or not list((workdir / "results" / "data").rglob("*.csv"))
