"""Config values as YAML would read them: what Snakemake's --config hands over as strings."""

import math

import pytest
import yaml

from genboost.config import settings


@pytest.fixture(scope="module")
def schema(repo_root):
    return settings.load_schema(repo_root / settings.SCHEMA)


@pytest.fixture
def config(repo_root):
    return yaml.safe_load((repo_root / "config.yaml").read_text())


def test_nested_command_line_strings_become_yaml_values(config, schema):
    # what `--config 'experiments={random_labels: {enabled: true}}' 'train={adam_eps: 1e-7}'` gives
    config["experiments"]["random_labels"]["enabled"] = "true"
    config["train"].update(adam_eps="1e-7", batch_size="16", flush_denormal="False", curve_every="null")
    config["analysis"].update(hessian_iters="null", sharpness_radii=["0.01", "5e-2"])
    out = settings.coerced(config, schema)
    assert out["experiments"]["random_labels"]["enabled"] is True
    assert out["train"]["adam_eps"] == 1e-7 and out["train"]["batch_size"] == 16
    assert out["train"]["flush_denormal"] is False
    assert out["train"]["curve_every"] is None and out["analysis"]["hessian_iters"] is None
    assert out["analysis"]["sharpness_radii"] == [0.01, 0.05]


def test_yaml_1_1_exponents_become_numbers(config, schema):
    out = settings.coerced(config, schema)
    assert out["experiments"]["main"]["lrs"] == [3e-5, 1e-4, 3e-4, 1e-3, 3e-3, 2e-2]
    assert all(isinstance(v, float) for v in out["experiments"]["main"]["lrs"])


def test_strings_where_the_schema_takes_strings_stay(config, schema):
    config["results"] = "123"
    config["datasets"]["obesity"]["local_copy"] = "1e-3"
    config["experiments"]["main"]["optimizers"] = ["sgd", "adam"]
    out = settings.coerced(config, schema)
    assert out["results"] == "123" and out["datasets"]["obesity"]["local_copy"] == "1e-3"
    assert out["experiments"]["main"]["optimizers"] == ["sgd", "adam"]
    assert out["datasets"]["obesity"]["drop"] == ["Weight"] and out["datasets"]["obesity"]["sep"] == ","


def test_null_where_the_schema_takes_null(config, schema):
    config["datasets"]["obesity"]["local_copy"] = "null"
    config["reference"] = "~"
    out = settings.coerced(config, schema)
    assert out["datasets"]["obesity"]["local_copy"] is None and out["reference"] is None


def test_text_that_is_no_scalar_is_left_for_the_schema(config, schema):
    config["train"]["momentum"] = "fast"
    config["train"]["adam_eps"] = ".nan"
    out = settings.coerced(config, schema)
    assert out["train"]["momentum"] == "fast" and math.isnan(out["train"]["adam_eps"])


def test_the_input_is_not_changed(config, schema):
    before = yaml.safe_dump(config)
    settings.coerced(config, schema)
    assert yaml.safe_dump(config) == before
