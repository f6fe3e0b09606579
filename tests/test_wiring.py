"""The Snakefile's paths, all from genboost/wiring.py: logs under the results folder, tables with their levels as
data, the comparison's inputs, and the constraint naming the compared experiments."""

from __future__ import annotations

import re

import pytest
from workflow_helpers import checked_config, repo_config

from genboost import wiring, wiring_measure
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


def test_a_comparison_reads_its_partners_cells_only_where_it_has_one(study, repo_root):
    compared = study.compared(wiring.reference_experiments(str(repo_root / "reference/talk-tables.csv")))
    inputs = {name: wiring.vs_talk_inputs("r", compared, "ref.csv", name) for name in compared}
    assert inputs["main"] == {
        "partner_cells": "r/second_chance/cells.csv",
        "cells": "r/main/cells.csv",
        "reference": "ref.csv",
    }
    alone = {**compared, "main": None}
    assert wiring.vs_talk_inputs("r", alone, "ref.csv", "main") == {"cells": "r/main/cells.csv", "reference": "ref.csv"}


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
