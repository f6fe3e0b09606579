"""The grid: canonical numbers, config errors, cells, packing and paths."""

import copy

import pytest
import yaml

from genboost import grid


@pytest.fixture
def config(repo_root):
    return yaml.safe_load((repo_root / "config.yaml").read_text())


def test_numbers_round_trip_to_one_path():
    assert grid.fmt_number("3e-5") == grid.fmt_number(0.00003) == grid.fmt_number(3.0e-05) == "3e-05"
    assert grid.fmt_number(0) == grid.fmt_number("0.0") == "0"
    assert grid.fmt_number("1e-4") == "0.0001"
    for text in ("3e-05", "0.0001", "0.02", "0", "1e-05", "1e+16"):
        assert grid.fmt_number(float(text)) == text


def test_default_study_has_576_plus_72_models(config):
    study = grid.Study.from_config(config)
    main, second = study.experiments
    assert len(main.cells()) == 576 and len(second.cells()) == 72
    assert len(set(study.all_metrics())) == 648
    epochs = {(c.rho > 0, c.epochs) for c in main.cells()}
    assert epochs == {(False, 200), (True, 100)}
    assert {c.epochs for c in second.cells()} == {200} and {c.rho for c in second.cells()} == {0.02}


def test_yaml_string_numbers_are_parsed(config):
    study = grid.Study.from_config(config)
    assert study.experiments[0].grid["lr"][0] == 3e-5  # YAML reads "3e-5" as a string


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("lrs", [1e-3, "fast"], "experiments.main.lrs: expected a number, got 'fast'"),
        ("lrs", [0], "experiments.main.lrs: 0 is out of range"),
        ("wds", [-1e-3], "experiments.main.wds: -0.001 is out of range"),
        ("lrs", ["3e-5", 0.00003], "experiments.main.lrs: duplicate value(s) ['3e-05']"),
        ("optimizers", ["rmsprop"], "unknown optimizer 'rmsprop'"),
        ("rhos", [], "experiments.main.rhos: needs at least one value"),
        ("bogus", 1, "experiments.main: unknown key(s) ['bogus']"),
    ],
)
def test_invalid_values_name_the_key(config, key, value, message):
    bad = copy.deepcopy(config)
    bad["experiments"]["main"][key] = value
    with pytest.raises(grid.ConfigError) as err:
        grid.Study.from_config(bad)
    assert message in str(err.value)


def test_packing_covers_every_cell_once(config):
    cfg = copy.deepcopy(config)
    for pack in ([], ["seed"], ["lr", "wd", "seed"], list(grid.AXES)):
        cfg["train"]["pack"] = pack
        exp = grid.Study.from_config(cfg).experiments[0]
        outputs = exp.job_outputs("r")
        assert len(outputs) == exp.job_size()
        free = [a for a in grid.AXES if a not in pack]
        # every packed output keeps exactly the free axes as wildcards
        for out in outputs:
            assert sorted(p.split("=")[0] for p in out.split("/") if "{" in p) == sorted(free)
        cells = exp.job_cells({a: grid.fmt_value(a, exp.grid[a][-1]) for a in free})
        paths = {exp.metrics_path("r", c) for c in cells}
        filled = {o.format(**{a: grid.fmt_value(a, exp.grid[a][-1]) for a in free}) for o in outputs}
        assert paths == filled


def test_job_params_are_plain_values(config):
    exp = grid.Study.from_config(config).experiments[0]
    params = exp.job_params({"optimizer": "adam", "rho": "0.05"})
    assert len(params) == 6 * 4 * 3
    assert all(type(v) in (str, int, float, bool, list) for p in params for v in p.values())
    assert {p["epochs"] for p in params} == {100}


def test_unknown_wildcard_value_is_an_error(config):
    exp = grid.Study.from_config(config).experiments[0]
    with pytest.raises(grid.ConfigError, match="rho='0.5' is not in the grid"):
        exp.job_cells({"optimizer": "adam", "rho": "0.5"})


def test_gpu_resources_only_on_cuda(config):
    cfg = copy.deepcopy(config)
    assert "gpu" not in grid.Study.from_config(cfg).experiments[0].job_resources()
    cfg["train"]["device"] = "cuda"
    assert grid.Study.from_config(cfg).experiments[0].job_resources()["gpu"] == 1


def test_runtime_grows_with_each_attempt(config):
    resources = grid.Study.from_config(config).experiments[0].job_resources()
    first, second = resources["runtime"]({}, 1), resources["runtime"]({}, 2)
    assert first >= 10 and second == 2 * first


def test_extra_experiments_are_off_until_enabled(config):
    names = [e.name for e in grid.Study.from_config(config).experiments]
    assert names == ["main", "second_chance"]
    cfg = copy.deepcopy(config)
    cfg["experiments"]["random_labels"]["enabled"] = True
    cfg["experiments"]["adam_decoupled"]["enabled"] = True
    study = grid.Study.from_config(cfg)
    noise, adamw = study.experiment("random_labels"), study.experiment("adam_decoupled")
    assert all(c.shuffle_labels for c in noise.cells()) and not any(c.shuffle_labels for c in adamw.cells())
    assert {c.wd_mode for c in adamw.cells()} == {"decoupled"} and len(adamw.cells()) == 72
