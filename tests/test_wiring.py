"""The Snakefile's paths, all from genboost/wiring.py: logs under the results folder, tables with their levels as
data, the comparison's inputs, and the constraint naming the compared experiments."""

from __future__ import annotations

import re

import pytest
from workflow_helpers import checked_config, repo_config

from genboost import wiring, wiring_compare, wiring_measure
from genboost.config.study import Study
from genboost.measures import registry


@pytest.fixture
def study() -> Study:
    return Study.from_config(checked_config(repo_config()))


def test_every_log_is_under_the_results_folder(study):
    main = study.experiment("main")
    logs = [
        wiring.log_path("r", "download", "obesity"),
        wiring.log_path("r", "preprocess", "{data}"),
        wiring.log_path("r", "summary"),
        wiring_measure.measure_log(main, "r"),
        wiring.model_log(main, "r"),
    ]
    assert all(log.startswith("r/logs/") and log.endswith(".log") for log in logs)
    assert logs[0] == "r/logs/download/obesity.log"


def test_each_table_comes_with_the_levels_of_its_cells(study):
    second = study.experiment("second_chance")
    assert wiring.tables("r", second) == {
        "r/second_chance/tables/optimizer=adam_rho=0.02.md": {"optimizer": "adam", "rho": "0.02"},
        "r/second_chance/tables/optimizer=adam_rho=0.02.csv": {"optimizer": "adam", "rho": "0.02"},
    }
    main = study.experiment("main")
    assert len(wiring.tables("r", main)) == 2 * len(main.levels("optimizer")) * len(main.levels("rho"))


def test_a_comparison_reads_the_train_jobs_of_it_and_its_partner_not_cells_csv(study, repo_root):
    """Not cells.csv, which waits for the measure jobs: a new measure setting reruns no comparison."""
    compared = study.compared(wiring.reference_experiments(str(repo_root / "reference/talk-tables.csv")))
    parts = {"main": 1, "second_chance": 2}
    inputs = {name: wiring_compare.vs_talk_inputs(study, parts, compared, "ref.csv", name) for name in compared}
    main, second = study.experiment("main"), study.experiment("second_chance")
    test = wiring.data_paths(main, study.results)["test"]
    assert inputs["main"] == {
        "reference": "ref.csv",
        "own_jobs": wiring.job_files(main, study.results, 1),
        "own_test": test,
        "partner_jobs": wiring.job_files(second, study.results, 2),
        "partner_test": wiring.data_paths(second, study.results)["test"],
    }
    assert inputs["second_chance"]["partner_jobs"] == inputs["main"]["own_jobs"]
    read = [p for v in inputs["main"].values() for p in (v if isinstance(v, list) else [v])]
    assert not [p for p in read if p.endswith("cells.csv") or "/jobs/measure/" in p]
    grids = {"own": {"experiment": "main", "sweep": []}, "partner": {"experiment": "second_chance", "sweep": []}}
    assert wiring_compare.vs_talk_grids(study, compared, "main") == grids
    alone = {**compared, "main": None}
    assert set(wiring_compare.vs_talk_inputs(study, parts, alone, "ref.csv", "main")) == {
        "reference",
        "own_jobs",
        "own_test",
    }
    assert wiring_compare.vs_talk_grids(study, alone, "main") == {"own": grids["own"]}


def test_the_experiment_constraint_matches_exactly_its_names():
    pattern = re.compile(f"(?:{wiring.one_of(['main', 'a.b'])})")
    assert pattern.fullmatch("main") and pattern.fullmatch("a.b")
    assert not pattern.fullmatch("axb") and not pattern.fullmatch("main2")
    assert not re.compile(wiring.one_of([])).fullmatch("")


def test_the_measures_figure_is_its_own_jobs_and_the_other_figures_read_no_measure(study):
    """A new measure setting redraws the measures figure alone: the figures job's outputs hold every figure but
    it, and the measures figure job's only it (none where the analysis measures nothing)."""
    main = study.experiment("main")
    analysis = study.analysis
    drawn, measures = wiring.train_figure_paths("r", main), wiring.measures_figure_paths("r", main, analysis)
    assert sorted(measures) == ["measures_pdf", "measures_png"]
    assert sorted(drawn) == [f"{n}_{e}" for n in ("heatmap", "learning_curves", "lr_curves") for e in ("pdf", "png")]
    assert wiring.figure_paths("r", main, analysis) == {**drawn, **measures}
    off = {**analysis, **dict.fromkeys(registry.SETTINGS)}  # every measure off
    assert wiring.measures_figure_paths("r", main, off) == {}


@pytest.mark.parametrize("cores, measure_jobs", [(2, 2), (3, 3), (16, 8), (None, 8)])
def test_the_measure_jobs_fill_the_cores_and_cover_every_train_job_once_in_order(study, cores, measure_jobs):
    """One measure job a core, each measuring a run of the train jobs, so that an edit that remeasures every model
    starts few processes; one a train job where no core count is known (a cluster)."""
    main = study.experiment("main")
    count = wiring_measure.measure_parts(main, 1, cores)
    assert count == measure_jobs
    parts = [{"part": f"{i}of{count}"} for i in range(1, count + 1)]
    files = wiring_measure.measure_files(main, "r", count)
    assert files == [f"r/main/jobs/measure/part={p['part']}.json" for p in parts]
    measured = [path for part in parts for path in wiring_measure.measured_job_files(main, "r", 1, part)]
    assert measured == wiring.job_files(main, "r", 1)
    metrics = [path for part in parts for path in wiring_measure.measured_metrics(main, "r", 1, part)]
    assert len(set(metrics)) == len(metrics) == main.pack_size() * len(measured)
