"""Config values as YAML would read them (what Snakemake's --config hands over as strings), and the config's
defaults: the schema's are the one source; config.yaml states them, Cell's and Dataset's are equal to them."""

import copy
import math
from dataclasses import MISSING, fields
from functools import reduce

import pytest
import yaml
from workflow_helpers import checked_config, repo_config

from genboost.config import settings
from genboost.config.cell import AXES, Cell
from genboost.config.datasets import Dataset
from genboost.config.study import JOB_KEYS, TRAIN_KEYS, Study

# The config's sections whose keys have defaults; every other default of the schema sits at its top level.
SECTIONS = ("train", "analysis", "model", "preprocess")
# Where config.yaml states another value than the default, on purpose: its study packs lr, wd and seed into one
# job, records learning curves and is compared with the talk's tables; a config that leaves these out trains one
# job per cell, records no curves, compares with nothing and, with several experiments, must name its baseline.
CONFIG_YAML_CHOICES = (("train", "pack"), ("train", "curve_every"), ("reference",), ("baseline",))


@pytest.fixture(scope="module")
def schema():
    return settings.load_schema()


@pytest.fixture
def config():
    return repo_config()


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


def schema_defaults() -> dict[tuple[str, ...], object]:
    """Every default of the schema's top level and of its sections, by the keys leading to it (config key confirm's,
    which a null switches off, under its `then`)."""
    top = {(key,): value for key, value in settings.defaults().items() if key not in (*SECTIONS, "confirm")}
    confirm = {("confirm", key): value for key, value in settings.defaults("properties", "confirm", "then").items()}
    return top | confirm | {(s, key): v for s in SECTIONS for key, v in settings.defaults("properties", s).items()}


def test_config_yaml_states_every_default_of_the_schema(config):
    defaults = schema_defaults()
    assert set(CONFIG_YAML_CHOICES) <= set(defaults)
    for path, default in defaults.items():
        value = reduce(lambda node, key: node[key], path, config)  # a KeyError: config.yaml leaves the key out
        assert path in CONFIG_YAML_CHOICES or value == default, f"{'.'.join(path)}: {value!r} != {default!r}"


def test_every_train_key_has_a_default_or_is_required_and_stated(config, schema):
    defaults = settings.defaults("properties", "train")
    required = schema["properties"]["train"]["required"]
    assert not set(defaults) & set(required) and set(defaults) | set(required) == set(TRAIN_KEYS)
    assert set(required) <= set(config["train"])


def test_every_cell_default_is_the_schemas_or_config_yamls(config):
    """A Cell setting's default is the schema's; where the schema has none (a required key: batch_size, t_max,
    momentum, model.hidden), it is config.yaml's value. A default the schema gives for no Cell setting is a job's
    (threads, pack, curve_every: how a job runs, not what a cell computes)."""
    schema = {**settings.defaults("properties", "train"), **settings.defaults("properties", "model")}
    stated = {**config["train"], **config["model"]}
    without_default = [f.name for f in fields(Cell) if f.default is MISSING]
    assert without_default == [*AXES, "epochs"]  # epochs: train.epochs or train.sam_epochs, by rho
    for f in fields(Cell):
        if f.default is MISSING:
            continue
        default = list(f.default) if isinstance(f.default, tuple) else f.default
        expected = schema[f.name] if f.name in schema else stated[f.name]
        assert default == expected, f"Cell.{f.name}: {default!r} != {expected!r}"
    assert set(schema) - {f.name for f in fields(Cell)} <= set(JOB_KEYS)


def test_a_dataset_entry_gets_the_schemas_defaults(config):
    entry = {"url": "https://example.org/x.csv", "sha256": "0" * 64, "label": {"column": "y"}}
    dataset = Dataset.from_config("x", entry)
    defaults = settings.defaults("$defs", "dataset")
    assert (dataset.sep, dataset.quote) == (defaults["sep"], defaults["quote"]) == (",", '"')
    assert dataset.categories == defaults["categorical"] == {} and list(dataset.drop) == defaults["drop"] == []
    config["datasets"] = {"x": entry}
    validated = checked_config(config)["datasets"]["x"]  # as the Snakefile sees it: filled in by settings.checked
    assert validated == {**entry, **defaults}
    assert Dataset.from_config("x", validated) == dataset
    assert Dataset.from_config("x", dataset.settings()) == dataset  # preprocessing parses the settings again


def test_a_config_that_leaves_every_defaulted_key_out_plans_the_same_study(config):
    """Leaving out every key the schema has a default for (config.yaml's choices aside) changes no cell, no
    preprocessing and no measure: through settings.checked, and (but the analysis, off unless given) given
    directly to Study.from_config."""
    for spec in config["experiments"].values():
        spec["enabled"] = True
    full = Study.from_config(checked_config(copy.deepcopy(config)))
    trimmed = copy.deepcopy(config)
    for path in schema_defaults():
        if path not in CONFIG_YAML_CHOICES:
            del reduce(lambda node, key: node[key], path[:-1], trimmed)[path[-1]]
    for spec in trimmed["experiments"].values():
        for key, default in settings.experiment_defaults().items():  # enabled: true, dataset: obesity
            if spec.get(key) == default:
                del spec[key]
    assert all("enabled" not in spec for spec in trimmed["experiments"].values())
    validated = Study.from_config(checked_config(copy.deepcopy(trimmed)))
    assert validated == full
    direct = Study.from_config(trimmed)
    assert direct.experiments == full.experiments and direct.results == full.results
    cells = direct.experiment("main").cells()
    adam = next(c for c in cells if c.optimizer == "adam")
    assert (adam.adam_betas, adam.adam_eps, adam.dtype, adam.flush_denormal) == ((0.9, 0.999), 1e-8, "float32", True)


def schema_error(config) -> str:
    from genboost.errors import ConfigError

    with pytest.raises(ConfigError) as err:
        checked_config(config)
    return str(err.value)


@pytest.mark.parametrize("url", ["absent", None, "null"])
def test_a_local_copy_needs_no_url(config, url):
    entry = config["datasets"]["obesity"]
    if url == "absent":
        del entry["url"]
    else:
        entry["url"] = url
    entry["local_copy"] = "/home/me/obesity.csv"
    assert checked_config(copy.deepcopy(config))["datasets"]["obesity"]["local_copy"] == "/home/me/obesity.csv"
    entry["local_copy"] = None  # then it says what to give, in one line, not the schema
    said = schema_error(copy.deepcopy(config))
    assert said == (
        "config key datasets.obesity: neither url nor local_copy is given: give url (https://... or file://...) "
        "or local_copy (a CSV on disk)"
    )
    entry["local_copy"] = "/home/me/obesity.csv"
    del entry["sha256"]  # still required, with a local copy too
    assert schema_error(config) == "config key datasets.obesity: 'sha256' is a required property"


def test_one_unknown_key_is_one_line_naming_it(config):
    config["train"]["epochz"] = 10
    said = schema_error(config)
    assert said == "config key train: Unevaluated properties are not allowed ('epochz' was unexpected)"
    config["datasets"]["obesity"]["labels"] = {"column": "x"}
    lines = schema_error(config).splitlines()
    assert len(lines) == 2 and lines[0].startswith("config key datasets.obesity: Additional properties")
    assert "'labels' was unexpected" in lines[0] and "'label'" in lines[0], "names the keys it takes"


def test_a_label_written_as_a_string_gets_a_hint(config):
    config["datasets"]["obesity"]["label"] = "mdvis"
    assert schema_error(config) == (
        "config key datasets.obesity.label: 'mdvis' is not of type 'object'; write label: {column: mdvis}"
    )
