"""The confirmation stage's config, wiring and files (issue 23): config key confirm, the fresh seeds and their jobs,
selected.csv and fresh.csv, and how the reports label the grid's verdicts. The stage run end to end:
tests/test_workflow_confirm.py."""

import copy
import json

import pandas as pd
import pytest
from workflow_helpers import checked_config, repo_config

from genboost import wiring_confirm
from genboost.compare import selection, talk
from genboost.compare.conclusions import evaluate
from genboost.config.study import Study
from genboost.errors import ConfigError
from genboost.wiring_measure import MEASURE_PRIORITY


@pytest.fixture
def config():
    return repo_config()


def study_of(config) -> Study:
    return Study.from_config(checked_config(copy.deepcopy(config)))


def compared(study: Study) -> dict:
    return study.compared({"main", "second_chance"})


def test_the_stage_is_on_by_default_with_the_schemas_values(config):
    del config["confirm"]
    study = study_of(config)
    assert study.confirm == {"seeds": 20, "first_seed": 1000, "margin": 0.01}
    assert study.fresh_seeds() == tuple(range(1000, 1020))
    assert study.confirmed(compared(study)) == {"main": "second_chance"}
    direct = Study.from_config(config)  # not validated: the same defaults, from the schema
    assert direct.confirm == study.confirm


def test_one_key_given_keeps_the_others_defaults(config):
    config["confirm"] = {"seeds": "30"}  # as --config hands it over
    study = study_of(config)
    assert study.confirm == {"seeds": 30, "first_seed": 1000, "margin": 0.01}
    assert len(study.fresh_seeds()) == 30


@pytest.mark.parametrize("off", [None, "null"])
def test_null_switches_the_stage_off(config, off):
    config["confirm"] = off
    study = study_of(config)
    assert study.confirm is None and study.fresh_seeds() == () and study.confirmed(compared(study)) == {}


def test_every_judged_setup_and_dataset_is_confirmed(config):
    for name in ("modern", "standardized", "sgd_momentum", "anes96", "fair", "random_labels"):
        config["experiments"][name]["enabled"] = True
    study = study_of(config)
    confirmed = study.confirmed(compared(study))
    judged = {**study.setups(compared(study)), **study.judged_on_own_cells(compared(study))}
    assert set(confirmed) == set(judged) == {"main", "modern", "standardized", "sgd_momentum", "anes96", "fair"}
    assert confirmed["main"] == "second_chance" and confirmed["fair"] is None


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("seeds", 4, "4 is less than the minimum of 5"),
        ("seeds", 5.5, "5.5 is not of type 'integer'"),
        ("first_seed", -1, "-1 is less than the minimum of 0"),
        ("margin", 0, "0 is less than or equal to the minimum of 0"),
        ("margin", -0.01, "-0.01 is less than or equal to the minimum of 0"),
        ("margin", "wide", "'wide' is not of type 'number'"),
    ],
)
def test_bad_values_fail_naming_the_key(config, key, value, message):
    config["confirm"][key] = value
    with pytest.raises(ConfigError) as err:
        checked_config(config)
    text = str(err.value)
    assert text.startswith(f"config key confirm.{key}: ") and message in text and len(text.splitlines()) == 1


def test_an_unknown_key_fails_naming_it(config):
    config["confirm"]["sead"] = 20
    with pytest.raises(ConfigError, match=r"config key confirm: .*'sead'"):
        checked_config(config)


@pytest.mark.parametrize(("experiment", "first_seed", "seed"), [("main", 0, 0), ("second_chance", 990, 1000)])
def test_fresh_seeds_that_are_grid_seeds_are_refused_naming_the_seed(config, experiment, first_seed, seed):
    config["experiments"][experiment]["seeds"] = [0, 1, 2, 1000]
    config["confirm"]["first_seed"] = first_seed
    study = study_of(config)
    with pytest.raises(ConfigError) as err:
        study.confirmed(compared(study))
    text = str(err.value)
    assert text.startswith("config key confirm.first_seed: ") and f"seed {seed}, a grid seed" in text
    assert f"experiments.{experiment}.seeds" in text


def test_a_fresh_job_is_one_configuration_at_every_fresh_seed(config):
    config["confirm"]["seeds"] = 5
    study = study_of(config)
    second = study.experiment("second_chance")
    names = {"optimizer": "adam", "lr": "0.003", "wd": "0.0001", "rho": "0.02"}
    assert wiring_confirm.fresh_job(second, "r").format(**names) == (
        "r/second_chance/confirm/jobs/optimizer=adam/lr=0.003/wd=0.0001/rho=0.02.json"
    )
    cells = wiring_confirm.fresh_params(study, second, names)
    assert [c["seed"] for c in cells] == [1000, 1001, 1002, 1003, 1004]
    assert {(c["lr"], c["wd"], c["rho"], c["epochs"]) for c in cells} == {(3e-3, 1e-4, 0.02, 200)}  # sam_epochs 200
    metrics = wiring_confirm.fresh_metrics(study, second, "r", names)
    assert (
        metrics[0] == "r/second_chance/confirm/runs/optimizer=adam/lr=0.003/wd=0.0001/rho=0.02/seed=1000/metrics.json"
    )
    with pytest.raises(ConfigError, match="lr='0.005' is not in the grid"):
        wiring_confirm.fresh_params(study, second, {**names, "lr": "0.005"})


def grid_cells(experiment: str, rows: list[tuple]) -> pd.DataFrame:
    """cells.csv rows (optimizer, lr, wd, rho, seed, test_mse) of one experiment."""
    frame = pd.DataFrame(rows, columns=["optimizer", "lr", "wd", "rho", "seed", "test_mse"])
    return frame.assign(experiment=experiment, diverged=False)


MAIN = grid_cells("main", [
    (o, lr, wd, rho, s, mse)
    for o, lr, wd, rho, mse in [("adam", 3e-3, 0.0, 0.0, 1.0), ("adam", 3e-3, 1e-4, 0.0, 0.9),
                                ("adam", 1e-3, 0.0, 0.0, 1.2), ("adam", 3e-3, 0.0, 0.02, 0.95),
                                ("sgd", 1e-3, 0.0, 0.0, 1.5)]
    for s in (0, 1, 2)
])  # fmt: skip
SECOND = grid_cells("second_chance", [("adam", 3e-3, 1e-4, 0.02, s, 0.92) for s in (0, 1, 2)])


def test_selected_csv_names_each_parts_two_configurations(tmp_path):
    rows = selection.selected(evaluate(MAIN, SECOND))
    assert len(rows) == 10  # C1's two parts, C2, C3, C4: two sides each
    c4 = rows[rows["conclusion"] == "C4"].set_index("side")
    assert c4.loc["other", ["experiment", "lr", "wd", "rho"]].tolist() == ["second_chance", "0.003", "0.0001", "0.02"]
    assert c4.loc["better", "grid_mean"] == pytest.approx(0.9) and not c4.loc["better", "strict"]
    out = tmp_path / "selected.csv"
    selection.write_selected(MAIN, None, str(out))
    written = pd.read_csv(out)
    assert "C4" not in set(written["conclusion"]), "a part the grid cannot test selects nothing"

    class Checkpoints:  # what Snakemake's checkpoints object gives an input function once the checkpoint ran
        class select:  # noqa: N801
            @staticmethod
            def get(experiment):
                return type("Job", (), {"output": [str(out)]})

    study = Study.from_config(checked_config(repo_config()))
    jobs = wiring_confirm.fresh_jobs(Checkpoints, study, "r", "main")
    assert len(jobs) == len(set(jobs)) == 5  # C1-C3 select 8, 5 distinct configurations: each trains once
    assert "r/main/confirm/jobs/optimizer=adam/lr=0.003/wd=0.0001/rho=0.json" in jobs


def job_file(path, experiment: str, configs: list[dict], mses: list[float], diverged=None) -> str:
    """A train job's file: each model's config, test and train MSE and whether it diverged."""
    flags = diverged or [False] * len(mses)
    rows = zip(configs, mses, flags, strict=True)
    records = [{"config": c, "test_mse": m, "train_mse": m, "diverged": d} for c, m, d in rows]
    path.write_text(json.dumps({"experiment": experiment, "cells": records}))
    return str(path)


def test_the_fresh_jobs_go_before_the_measure_jobs_the_longest_first(config):
    study = study_of(config)
    main, second = study.experiment("main"), study.experiment("second_chance")
    sam = {"optimizer": "adam", "lr": "0.003", "wd": "0", "rho": "0.02"}  # 100 epochs; the second chance's 200
    priority = {
        name: wiring_confirm.fresh_priority(study, e, c)
        for name, e, c in [("sam", main, sam), ("plain", main, {**sam, "rho": "0"}), ("second", second, sam)]
    }
    assert priority["second"] > priority["sam"] == priority["plain"] > MEASURE_PRIORITY


def fresh_job_file(path, experiment: str, config: dict, mses: list[float]) -> str:
    return job_file(path, experiment, [{**config, "seed": 1000 + i} for i in range(len(mses))], mses)


def grid_job_files(tmp_path, cells: pd.DataFrame) -> list[str]:
    """`cells` as the files of two train jobs, each holding every other row, the second job first."""
    experiment = cells["experiment"].iloc[0]
    configs = cells[["optimizer", "lr", "wd", "rho", "seed"]].to_dict("records")
    flags = cells["diverged"].tolist()
    return [job_file(tmp_path / f"{experiment}{i}.json", experiment, configs[i::2], cells["test_mse"].tolist()[i::2],
                     flags[i::2]) for i in (1, 0)]  # fmt: skip


def test_the_selection_from_the_train_jobs_files_is_the_one_from_cells_csv(tmp_path):
    main = MAIN.assign(diverged=MAIN.index == 4)  # adam lr 1e-3 seed 1: that configuration has no mean
    cells = selection.grid_cells("main", grid_job_files(tmp_path, main))
    columns, axes = ["experiment", "optimizer", "lr", "wd", "rho", "seed", "test_mse", "diverged"], ["lr", "wd", "seed"]
    in_order = main[columns].sort_values(["optimizer", "rho", *axes]).reset_index(drop=True)  # as cells.csv's rows
    assert cells[columns].equals(in_order)
    second = selection.grid_cells("second_chance", grid_job_files(tmp_path, SECOND))
    assert selection.selected(evaluate(cells, second)).equals(selection.selected(evaluate(main, SECOND)))


def test_the_selection_reads_the_grids_train_jobs_not_its_cells_csv(config):
    study = study_of(config)
    confirmed = study.confirmed(compared(study))
    inputs = wiring_confirm.select_inputs(study, {"main": 1, "second_chance": 2}, confirmed, "main")
    assert len(inputs["jobs"]) == 8 and all(p.startswith("results/main/jobs/train/") for p in inputs["jobs"])
    pattern = "results/second_chance/jobs/train/optimizer=adam/rho=0.02/part={}of2.json"
    assert inputs["partner_jobs"] == [pattern.format(i) for i in (1, 2)]
    grids = {"jobs": {"experiment": "main", "sweep": []}, "partner_jobs": {"experiment": "second_chance", "sweep": []}}
    assert wiring_confirm.select_grids(study, confirmed, "main") == grids
    # without a second chance: only its own jobs, with its swept keys
    config["experiments"]["second_chance"]["enabled"] = False
    config["experiments"]["main"]["sweep"] = {"batch_size": [16, 32]}
    study, confirmed = study_of(config), {"main": None}
    assert set(wiring_confirm.select_inputs(study, {"main": 1}, confirmed, "main")) == {"jobs"}
    swept = {"jobs": {"experiment": "main", "sweep": ["batch_size"]}}
    assert wiring_confirm.select_grids(study, confirmed, "main") == swept


def test_fresh_csv_holds_every_jobs_models_with_their_experiment(tmp_path, split_csvs):
    adam = {"optimizer": "adam", "lr": 3e-3, "wd": 1e-4, "rho": 0.02}
    jobs = [fresh_job_file(tmp_path / "a.json", "main", adam, [1.0] * 5),
            fresh_job_file(tmp_path / "b.json", "second_chance", adam, [2.0] * 5)]  # fmt: skip
    selection.write_fresh(jobs, split_csvs[1], str(tmp_path / "fresh.csv"))
    fresh = pd.read_csv(tmp_path / "fresh.csv")
    assert fresh.groupby("experiment")["test_mse"].mean().to_dict() == {"main": 1.0, "second_chance": 2.0}
    assert fresh["seed"].tolist() == [1000, 1001, 1002, 1003, 1004] * 2 and fresh["test_mse_rel"].notna().all()


def fresh_models(cells: pd.DataFrame, seeds=range(1000, 1005)) -> pd.DataFrame:
    """Each configuration of `cells` at the fresh seeds: its grid test MSE plus a seed's small offset."""
    configs = cells.drop_duplicates(["experiment", "optimizer", "lr", "wd", "rho"]).drop(columns="seed")
    rows = [c.assign(seed=s, test_mse=c["test_mse"] + 0.001 * (s % 3)) for s in seeds for _, c in [(0, configs)]]
    return pd.concat(rows, ignore_index=True)


def test_the_summary_shows_the_confirmed_verdicts_above_the_selections():
    cells = pd.concat([MAIN, SECOND], ignore_index=True).assign(shuffle_labels=False)
    fresh = fresh_models(cells)
    lines = talk.talk_section(cells, {"main": "second_chance"}, None, {"main": (fresh, 0.04)})
    text = "\n".join(lines)
    assert text.index("### Confirmed on 5 fresh seeds") < text.index(talk.SELECTION + "\n")
    assert "| C3: SGD is not supported" in text and "confirmed (Δ -0.600" in text  # SGD 1.5 against Adam's best 0.9
    assert "The winner's curse:\n\n- main: " in text
    off = "\n".join(talk.talk_section(cells, {"main": "second_chance"}))
    assert talk.SELECTION + talk.NOT_CONFIRMED in off and "Confirmed on" not in off
