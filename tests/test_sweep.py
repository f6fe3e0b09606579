"""Any setting as an axis (`sweep:`): paths, cells, packing, validation, resuming."""

import copy
import re
from dataclasses import replace

import pytest
from workflow_helpers import checked_config, repo_config

from genboost import wiring
from genboost.config import packing, settings, sweep
from genboost.config.cell import AXES
from genboost.config.study import TRAIN_KEYS, Experiment, Study
from genboost.errors import ConfigError
from genboost.train.resume import Lineage


@pytest.fixture
def config():
    return repo_config()


def with_experiment(config, **spec) -> dict:
    """The config with one more experiment, `swept`: one SGD lr and wd, no SAM, two seeds, plus `spec`."""
    cfg = copy.deepcopy(config)
    base = {"optimizers": ["sgd"], "lrs": [1e-3], "wds": [0], "rhos": [0], "seeds": [0, 1]}
    cfg["experiments"]["swept"] = {**base, **spec}
    return cfg


def swept(config, **spec) -> Experiment:
    return Study.from_config(checked_config(with_experiment(config, **spec))).experiment("swept")


def test_without_a_sweep_the_paths_are_as_they_always_were(config):
    study = Study.from_config(checked_config(config))
    main = study.experiment("main")
    old = "{results}/{experiment}/runs/optimizer={optimizer}/lr={lr}/wd={wd}/rho={rho}/seed={seed}/metrics.json"
    assert wiring.run_pattern(main.axes) == old and main.axes == AXES  # unchanged since before sweeps
    assert (
        wiring.metrics_path(main, "r", main.cells()[0])
        == "r/main/runs/optimizer=sgd/lr=3e-05/wd=0/rho=0/seed=0/metrics.json"
    )
    assert wiring.table_paths("r", main)[:2] == [
        "r/main/tables/optimizer=sgd_rho=0.md",
        "r/main/tables/optimizer=sgd_rho=0.csv",
    ]
    assert wiring.job_log(main, "r") == "r/logs/main/train/optimizer={optimizer}/rho={rho}/part={part}.log"


def test_a_swept_batch_size_is_a_level_of_the_paths_and_a_setting_of_the_cells(config):
    exp = swept(config, sweep={"batch_size": ["16", 32.0, 64]})  # read as YAML would, canonical
    assert exp.axes == ("optimizer", "lr", "wd", "rho", "batch_size", "seed") and exp.sweep == {
        "batch_size": (16, 32, 64)
    }
    cells = exp.cells()
    assert len(cells) == 3 * 2 and sorted({c.batch_size for c in cells}) == [16, 32, 64]
    paths = [wiring.metrics_path(exp, "r", c) for c in cells]
    assert len(set(paths)) == 6
    assert "r/swept/runs/optimizer=sgd/lr=0.001/wd=0/rho=0/batch_size=16/seed=1/metrics.json" in paths
    assert wiring.table_paths("r", exp) == [
        f"r/swept/tables/optimizer=sgd_rho=0_batch_size={b}.{ext}" for b in (16, 32, 64) for ext in ("md", "csv")
    ]
    job = "optimizer={optimizer}/rho={rho}/batch_size={batch_size}/part={part}"
    assert wiring.job_log(exp, "r") == f"r/logs/swept/train/{job}.log"
    assert wiring.job_file(exp, "r") == f"r/swept/jobs/train/{job}.json"


def test_hidden_widths_and_betas_are_written_with_x(config):
    exp = swept(config, sweep={"hidden": [[64, 64], [32]]})
    assert {c.hidden for c in exp.cells()} == {(64, 64), (32,)}
    assert {exp.wildcards(c)["hidden"] for c in exp.cells()} == {"64x64", "32"}
    adam = swept(config, optimizers=["adam"], sweep={"adam_betas": [[0.9, 0.999], [0.5, 0.9]]})
    assert {adam.wildcards(c)["adam_betas"] for c in adam.cells()} == {"0.9x0.999", "0.5x0.9"}


def test_two_swept_settings_multiply_and_keep_their_order(config):
    exp = swept(config, sweep={"momentum": [0, 0.9], "batch_size": [8, 64]})
    assert exp.axes[4:6] == ("momentum", "batch_size") and len(exp.cells()) == 2 * 2 * 2
    cell = next(c for c in exp.cells() if (c.momentum, c.batch_size, c.seed) == (0.9, 8, 0))
    assert "rho=0/momentum=0.9/batch_size=8/seed=0/" in wiring.metrics_path(exp, "r", cell)


def test_packing_a_swept_setting_covers_every_cell_once(config):
    cfg = with_experiment(config, sweep={"batch_size": [8, 64]})
    cfg["train"]["pack"] = ["batch_size", "seed"]
    study = Study.from_config(checked_config(cfg))
    exp, main = study.experiment("swept"), study.experiment("main")
    assert exp.pack == ("batch_size", "seed") and main.pack == ("seed",)  # main sweeps nothing: ignored there
    assert "{batch_size}" not in wiring.job_file(exp, "r")
    free = {"optimizer": "sgd", "lr": "0.001", "wd": "0", "rho": "0", "part": "1of1"}
    outputs = wiring.job_metrics(exp, "r", free)
    assert len(outputs) == exp.pack_size() == 4
    assert sorted(wiring.metrics_path(exp, "r", c) for c in exp.cells()) == sorted(outputs)


def test_unpacked_swept_setting_is_a_wildcard_of_the_job(config):
    exp = swept(config, sweep={"batch_size": [8, 64]})
    cells = exp.pack_cells({"optimizer": "sgd", "rho": "0", "batch_size": "64"})
    assert len(cells) == 2 and {c.batch_size for c in cells} == {64}
    with pytest.raises(ConfigError, match="batch_size='32' is not in the grid"):
        exp.pack_cells({"optimizer": "sgd", "rho": "0", "batch_size": "32"})


def validation_error(config, **spec) -> str:
    with pytest.raises(ConfigError) as err:
        swept(config, **spec)
    return str(err.value) + str(getattr(err.value, "args", ""))


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"sweep": {"bogus": [1]}}, "'bogus' was unexpected"),
        ({"sweep": {"device": ["cpu"]}}, "'device' was unexpected"),  # how a job runs, not what it computes
        ({"sweep": {"batch_size": [0]}}, "0 is less than the minimum of 1"),
        ({"sweep": {"batch_size": [8.5]}}, "8.5 is not of type 'integer'"),
        ({"sweep": {"batch_size": []}}, "[] should be non-empty"),
        ({"sweep": {"momentum": [0.9, "0.90"]}}, "has non-unique elements"),
        ({"sweep": {"wd_mode": ["coupled", "l1"]}}, "'l1' is not one of ['coupled', 'decoupled']"),
        ({"sweep": {"hidden": [[64, 0]]}}, "0 is less than the minimum of 1"),
        ({"sweep": {}}, "should be non-empty"),
    ],
)
def test_bad_sweeps_fail_validation_naming_the_key(config, spec, message):
    text = validation_error(config, **spec)
    assert message in text and "sweep" in text


def test_a_setting_both_set_and_swept_is_refused(config):
    text = validation_error(config, batch_size=32, sweep={"batch_size": [16, 64]})
    assert "experiments.swept: batch_size is both set (32) and swept ([16, 64]); keep one" in text


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (
            {"optimizers": ["sgd", "adam"], "sweep": {"momentum": [0, 0.9]}},
            "adam cells without SAM do not read momentum",
        ),
        ({"rhos": [0, 0.05], "sweep": {"epochs": [2, 4]}}, "sgd cells with SAM do not read epochs"),
        ({"sweep": {"sam_epochs": [2, 4]}}, "sgd cells without SAM do not read sam_epochs"),
        ({"sweep": {"sam_adaptive": [False, True]}}, "sgd cells without SAM do not read sam_adaptive"),
        (
            {"sweep": {"wd_norm_params": [False, True], "norm": ["none", "layer"]}},
            "cells with norm none do not read wd_norm_params",
        ),
    ],
)
def test_a_level_that_would_not_change_some_cells_is_refused(config, spec, message):
    assert f"experiments.swept.sweep.{list(spec['sweep'])[0]}: {message}" in validation_error(config, **spec)


def test_sam_epochs_is_swept_in_an_experiment_of_sam_cells(config):
    exp = swept(config, rhos=[0.05], sweep={"sam_epochs": [50, 100]})
    assert {c.epochs for c in exp.cells()} == {50, 100}
    assert {exp.wildcards(c)["sam_epochs"] for c in exp.cells()} == {"50", "100"}


def test_data_settings_may_be_swept_but_not_packed(config):
    cfg = with_experiment(config, sweep={"dtype": ["float32", "float64"]})
    assert len(Study.from_config(checked_config(cfg)).experiment("swept").cells()) == 4
    cfg["train"]["pack"] = ["dtype"]
    with pytest.raises(ConfigError, match="train.pack of experiment swept: dtype is swept and packed"):
        Study.from_config(checked_config(cfg))


def test_the_schema_lists_every_sweepable_setting_and_pack_takes_them():
    schema = settings.load_schema()
    assert set(schema["$defs"]["sweep"]["properties"]) == set(sweep.SWEEPABLE)
    assert schema["$defs"]["train"]["properties"]["pack"]["items"]["enum"] == [*AXES, *sweep.SWEEPABLE]
    assert set(sweep.SWEEPABLE) - {"hidden", "norm"} <= set(TRAIN_KEYS)  # those two: config key model


@pytest.mark.parametrize(
    ("key", "values", "text", "bad"),
    [
        ("batch_size", [16, 128], ["16", "128"], ["16.0", "016", "x"]),
        ("momentum", [0.0, 0.9, 1e-5], ["0", "0.9", "1e-05"], ["0.9x2", "fast"]),
        ("hidden", [(64, 64), (32,)], ["64x64", "32"], ["64,64", "64x", "064"]),
        ("adam_betas", [(0.9, 0.999)], ["0.9x0.999"], ["0.9,0.999"]),
        ("sam_adaptive", [True, False], ["true", "false"], ["True", "1"]),
        ("wd_mode", ["coupled"], ["coupled"], ["Coupled"]),
        ("norm", ["none", "layer"], ["none", "layer"], ["Layer", "layer norm"]),
    ],
)
def test_levels_are_written_canonically_and_the_wildcards_match_them(key, values, text, bad):
    assert [sweep.fmt_value(key, v) for v in values] == text
    pattern = re.compile(wiring.wildcard_constraints()[key])
    assert all(pattern.fullmatch(t) for t in text) and not any(pattern.fullmatch(t) for t in bad)


def test_a_longer_run_goes_on_from_the_shorter_run_of_the_same_batch_size(config):
    cfg = copy.deepcopy(config)
    spec = {"optimizers": ["adam"], "lrs": [1e-3], "wds": [0], "rhos": [0.05], "seeds": [0]}
    cfg["experiments"] = {  # a sweep's values are more of the grid: they may differ between the two
        "short": {**spec, "sam_epochs": 2, "sweep": {"batch_size": [16, 64]}},
        "long": {**spec, "sam_epochs": 4, "sweep": {"batch_size": [64, 16, 32]}, "continues": "short"},
    }
    cfg["baseline"] = "short"
    study = Study.from_config(checked_config(cfg))
    lineage, short, long = Lineage(study), study.experiment("short"), study.experiment("long")
    for cell in long.cells():
        found = lineage.shorter_run(long, cell)
        assert (found[1] == replace(cell, epochs=2)) if cell.batch_size != 32 else found is None
    cells = packing.job_cells(long, {"optimizer": "adam", "rho": "0.05", "batch_size": "16", "part": "1of1"})
    inputs = wiring.job_inputs(lineage, long, cells, {"short": 1, "long": 1})
    assert inputs == [f"{study.results}/short/jobs/train/optimizer=adam/rho=0.05/batch_size=16/part=1of1.json"]
    assert all(lineage.continued(short, c) for c in short.cells())


def test_the_implicit_bias_experiment_sweeps_batch_size_and_is_not_compared_with_the_talk(config, repo_root):
    assert config["experiments"]["implicit_bias"]["enabled"] is False
    cfg = copy.deepcopy(config)
    cfg["experiments"]["implicit_bias"]["enabled"] = True
    study = Study.from_config(checked_config(cfg))
    bias, main = study.experiment("implicit_bias"), study.experiment("main")
    assert len(bias.cells()) == 2 * 3 * 3 * 2 * 3 and {c.epochs for c in bias.cells()} == {200}
    at_32 = {c for c in bias.cells() if c.batch_size == 32}
    assert len(at_32) == 36 and at_32 <= set(main.cells())  # main's models: the store has them
    assert bias.reference_experiment not in wiring.reference_experiments(str(repo_root / "reference/talk-tables.csv"))
