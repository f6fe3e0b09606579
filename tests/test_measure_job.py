"""The measure job: measures from the stored weights, each on its own setting, the same whatever is measured
together (the registry itself: tests/test_registry.py)."""

from __future__ import annotations

import copy
import dataclasses
import json
import logging
import shutil

import pytest
import yaml
from workflow_helpers import append_code, job_files

from genboost import fingerprint, wiring
from genboost.analysis import tables
from genboost.config.study import Experiment, Study
from genboost.measures import pacbayes, registry
from genboost.measures.job import COMPUTATIONS, MeasureJob, run_measure_job
from genboost.measures.store import MeasureStore
from genboost.train import jobs

ANALYSIS = {
    "sharpness_radii": [0.01, 0.05],
    "hessian_iters": 5,
    "pacbayes": {"samples": 4, "iters": 2, "max_increase": 0.1},
}


@pytest.fixture(scope="module")
def training(repo_root, split_csvs, tmp_path_factory):
    """Four cells of the tiny study (one of them diverged) trained into a store: (train job, results)."""
    config = yaml.safe_load((repo_root / "tests/configs/tiny.yaml").read_text())
    config["model"]["hidden"] = [4]
    config["train"].update(epochs=1, sam_epochs=1)
    experiment = Study.from_config(config).experiment("main")
    wild = Experiment(experiment.name, copy.deepcopy(experiment.grid), experiment.train, experiment.hidden)
    wild.grid["lr"] = (*wild.grid["lr"], 1e6)
    cells = [*experiment.cells()[:3], wild.cell("sgd", 1e6, 0.0, 0.0, 0)]
    results = tmp_path_factory.mktemp("measure")
    outputs = [wiring.metrics_path(wild, str(results), c) for c in cells]
    job = jobs.TrainJob(wild, cells, outputs, str(results), *split_csvs)
    jobs.run_train_job(job)
    return job, results


@pytest.fixture(scope="module")
def trained(training):
    """The trained models' metrics.json, the results folder holding the store, the split: (outputs, results, csvs)."""
    job, results = training
    return job.outputs, results, (job.train_csv, job.test_csv)


def measure(trained, analysis, which=None, fresh: bool = True) -> list[dict]:
    """The measures.json of these models (all by default) after a measure job; `fresh`: with an empty measure
    store, so that every measure is computed."""
    outputs, results, csvs = trained
    if fresh:
        shutil.rmtree(results / "store" / "measures", ignore_errors=True)
    metrics = [outputs[i] for i in (which if which is not None else range(len(outputs)))]
    outs = [m.replace("metrics.json", f"measures-{len(metrics)}.json") for m in metrics]
    run_measure_job(MeasureJob("main", metrics, outs, str(results), *csvs, analysis))
    return [json.loads(open(o).read()) for o in outs]


def test_each_model_gets_every_measure_the_analysis_asks_for_and_a_diverged_one_nulls(trained):
    found = measure(trained, ANALYSIS)
    records = [json.loads(open(m).read()) for m in trained[0]]
    assert [f["store_key"] for f in found] == [r["store_key"] for r in records]
    assert [r["diverged"] for r in records] == [False, False, False, True]
    columns = ["sharpness_r0.01", "sharpness_r0.05", "hessian_top_eig", "pacbayes_flatness", "pacbayes_mag_flatness",
               "weight_norm", "dist_from_init"]  # fmt: skip
    for f in found:
        assert sorted(f["measures"]) == sorted(columns)  # JSON keys sorted
    assert all(isinstance(v, float) for f in found[:3] for v in f["measures"].values())
    assert found[3]["measures"] == dict.fromkeys(columns)


def test_a_model_measured_alone_gets_the_numbers_it_gets_with_the_others(trained):
    together = measure(trained, ANALYSIS)
    alone = measure(trained, ANALYSIS, which=[1])
    assert alone[0] == together[1]


def test_each_measure_runs_on_its_own_setting(trained):
    """Sharpness radii are measured without the Hessian (they were dropped when hessian_iters was null)."""
    only_radii = measure(trained, {"sharpness_radii": [0.05], "hessian_iters": None, "pacbayes": None})
    assert list(only_radii[0]["measures"]) == ["sharpness_r0.05"]
    full = measure(trained, ANALYSIS)
    assert only_radii[0]["measures"]["sharpness_r0.05"] == full[0]["measures"]["sharpness_r0.05"]
    only_hessian = measure(trained, {"sharpness_radii": [], "hessian_iters": 5, "pacbayes": None})
    assert only_hessian[0]["measures"] == {"hessian_top_eig": full[0]["measures"]["hessian_top_eig"]}


def test_a_model_without_stored_weights_fails_naming_its_metrics_file(trained, tmp_path):
    outputs, results, csvs = trained
    record = json.loads(open(outputs[0]).read())
    other = tmp_path / "metrics.json"
    other.write_text(json.dumps({**record, "store_key": "ab" * 32}))
    with pytest.raises(RuntimeError, match=rf"{other}: the store has no weights under its store_key abab"):
        run_measure_job(MeasureJob("main", [str(other)], [str(tmp_path / "m.json")], str(results), *csvs, ANALYSIS))


def test_tables_read_each_models_measures_from_its_measure_job(trained, tmp_path):
    outputs, results, csvs = trained
    (train_job,) = job_files(outputs, tmp_path, jobs=1)
    measure_job = tmp_path / "measure-job.json"
    outs = [str(tmp_path / f"measures-{i}.json") for i in range(len(outputs))]
    run_measure_job(MeasureJob("main", outputs, outs, str(results), *csvs, ANALYSIS, str(measure_job), [train_job]))
    found = json.loads(measure_job.read_text())["measures"]
    cells = tables.cells_frame("main", tables.read_job_records([train_job], [str(measure_job)]))
    assert set(registry.job_columns(ANALYSIS)) <= set(cells.columns) and cells["diverged"].sum() == 1
    by_key = {f["store_key"]: f["measures"]["weight_norm"] for f in found}
    keys = [json.loads(open(o).read())["store_key"] for o in outputs]
    assert sorted(cells["weight_norm"].dropna()) == sorted(by_key[k] for k in keys if by_key[k] is not None)
    swapped = tmp_path / "swapped.json"
    swapped.write_text(json.dumps({"experiment": "main", "measures": found[::-1]}))
    with pytest.raises(ValueError, match="measures store_key"):
        tables.read_job_records([train_job], [str(swapped)])


def test_the_registrys_pacbayes_columns_are_what_the_pacbayes_measures_compute():
    assert registry.job_columns({"pacbayes": ANALYSIS["pacbayes"]}) == list(pacbayes.MEASURE_KEYS)


def test_measured_from_the_train_jobs_files_into_a_job_file_of_its_own(trained, tmp_path):
    """The measure job reads the records of its train jobs' files (not the metrics.json, which a user may have
    deleted) and writes every model's measures, in their order, into its own job file: what the tables read."""
    outputs, results, csvs = trained
    by_file = measure(trained, ANALYSIS)
    train_jobs = job_files(outputs, tmp_path, jobs=2)  # one measure job measures two train jobs' models
    missing = [str(tmp_path / f"gone-{i}" / "metrics.json") for i in range(len(outputs))]
    outs = [str(tmp_path / f"measures-{i}.json") for i in range(len(outputs))]
    job = MeasureJob("main", missing, outs, str(results), *csvs, ANALYSIS, str(tmp_path / "m.json"), train_jobs)
    run_measure_job(job)
    assert [json.loads(open(o).read()) for o in outs] == by_file
    assert json.loads((tmp_path / "m.json").read_text())["measures"] == by_file
    records = tables.read_job_records(train_jobs, [str(tmp_path / "m.json")])
    assert [r["flatness"] for r in records] == [f["measures"] for f in by_file]


def measured_counts(trained, analysis, which=None) -> tuple[list[dict], dict[str, tuple[int, int]]]:
    """A measure job on the stored measures so far: (each model's measures.json, measure -> (measured, reused))."""
    outputs, results, csvs = trained
    metrics = [outputs[i] for i in (which if which is not None else range(len(outputs)))]
    outs = [m.replace("metrics.json", "measures-counted.json") for m in metrics]
    counts = run_measure_job(MeasureJob("main", metrics, outs, str(results), *csvs, analysis))
    return [json.loads(open(o).read()) for o in outs], counts


def test_a_measure_is_reused_from_the_store_after_the_jobs_other_models_change(trained, caplog):
    """A job of models 0-2, then one of models 1-3 (as after a new seed): only model 3 is measured."""
    first = measure(trained, ANALYSIS, which=[0, 1, 2])
    with caplog.at_level(logging.INFO, logger="genboost"):
        found, counts = measured_counts(trained, ANALYSIS, which=[1, 2, 3])
    assert counts == dict.fromkeys(registry.SETTINGS, (1, 2))
    assert "pacbayes: measured 1, reused 2" in caplog.text and "sharpness_radii: measured 1, reused 2" in caplog.text
    assert found[:2] == first[1:] and found == measure(trained, ANALYSIS)[1:]


def test_a_changed_measure_setting_recomputes_only_that_measure(trained):
    samples = {**ANALYSIS, "pacbayes": {**ANALYSIS["pacbayes"], "samples": 6}}
    expected = measure(trained, samples)
    before = measure(trained, ANALYSIS)
    found, counts = measured_counts(trained, samples)
    assert counts == {"sharpness_radii": (0, 4), "hessian_iters": (0, 4), "pacbayes": (4, 0)}
    pacbayes_columns = registry.job_columns({"pacbayes": ANALYSIS["pacbayes"]})
    unchanged = [{c: v for c, v in f["measures"].items() if c not in pacbayes_columns} for f in found]
    assert unchanged == [{c: v for c, v in b["measures"].items() if c not in pacbayes_columns} for b in before]
    assert found == expected
    radius = {**ANALYSIS, "sharpness_radii": [0.01, 0.05, 0.1]}  # a new radius measures that radius alone
    found, counts = measured_counts(trained, radius)
    assert counts == {"sharpness_radii": (4, 0), "hessian_iters": (0, 4), "pacbayes": (0, 4)}
    assert [f["measures"] for f in found] == [m["measures"] for m in measure(trained, radius)]


def corrupt_entry(store: MeasureStore, how: str) -> None:
    """Damage one stored PAC-Bayes entry: cut short, a value made text, or another model's entry put in its place."""
    paths = sorted(p for p in store.root.rglob("*.json") if json.loads(p.read_text())["measure"] == "pacbayes")
    entry = json.loads(paths[0].read_text())
    if how == "truncated":
        paths[0].write_text(paths[0].read_text()[:50])
    elif how == "text":
        entry["values"]["weight_norm"] = "1.5"
        paths[0].write_text(json.dumps(entry))
    else:
        paths[0].write_text(paths[1].read_text())


@pytest.mark.parametrize(
    ("how", "why"),
    [("truncated", "cannot be read as JSON"), ("text", "weight_norm are not finite numbers"),
     ("other model", "its store_key is")],
)  # fmt: skip
def test_a_corrupt_stored_measure_is_refused_and_recomputed(trained, how, why, caplog):
    before = measure(trained, ANALYSIS)
    corrupt_entry(MeasureStore(trained[1] / "store"), how)
    with caplog.at_level(logging.WARNING, logger="genboost"):
        found, counts = measured_counts(trained, ANALYSIS)
    assert why in caplog.text and "it is measured again" in caplog.text
    assert counts["pacbayes"] == (1, 3) and counts["hessian_iters"] == (0, 4)
    assert found == before
    assert measured_counts(trained, ANALYSIS)[1]["pacbayes"] == (0, 4)  # stored again, whole


def test_a_train_job_that_reuses_everything_leaves_its_measure_job_nothing_to_compute(training, trained, tmp_path):
    """Both job files come out byte-identical, and the measure job reads no weights (the store has none then)."""
    train_job, results = training
    outputs, _, csvs = trained
    measure(trained, ANALYSIS)
    train_file, measure_file = tmp_path / "train.json", tmp_path / "measure.json"
    written = []
    for _ in range(2):
        assert jobs.run_train_job(dataclasses.replace(train_job, job_file=str(train_file))) == (0, 4)
        weights = sorted(results.joinpath("store").glob("*/*.weights.pt"))
        for path in weights:  # what a measure job that computes reads
            path.rename(path.with_suffix(".moved"))
        outs = [str(tmp_path / f"m{i}.json") for i in range(len(outputs))]
        job = MeasureJob("main", outputs, outs, str(results), *csvs, ANALYSIS, str(measure_file), [str(train_file)])
        try:
            assert run_measure_job(job) == dict.fromkeys(registry.SETTINGS, (0, 4))
        finally:
            for path in weights:
                path.with_suffix(".moved").rename(path)
        written.append((train_file.read_bytes(), measure_file.read_bytes()))
    assert written[0] == written[1]


def test_a_measures_code_is_its_own_module_and_what_that_imports(tmp_path, monkeypatch):
    """Editing the sharpness module remeasures sharpness and the Hessian, not PAC-Bayes; editing the job's
    bookkeeping remeasures nothing."""
    assert set(COMPUTATIONS) == set(registry.SETTINGS)
    package = shutil.copytree(fingerprint.PACKAGE_DIR, tmp_path / "genboost", ignore=shutil.ignore_patterns("__py*"))
    monkeypatch.setattr(fingerprint, "PACKAGE_DIR", package)
    codes = {name: c.code() for name, c in COMPUTATIONS.items()}
    for module in ("measures/job.py", "measures/store.py", "measures/registry.py"):
        append_code(package / module)
    assert {name: c.code() for name, c in COMPUTATIONS.items()} == codes
    append_code(package / "measures/sharpness.py")
    changed = {name for name, c in COMPUTATIONS.items() if c.code() != codes[name]}
    assert changed == {registry.SHARPNESS_RADII, registry.HESSIAN_ITERS}
