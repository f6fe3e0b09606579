"""The optimizer registry (genboost/config/optimizers.py) and the places that derive from it, and the train
defaults: the schema's, config.yaml's and the Cell's agree."""

import re
from dataclasses import fields

import pytest
import torch
import yaml

from genboost import wiring
from genboost.config import optimizers
from genboost.config import study as grid
from genboost.config.cell import AXES, DEFAULTS, Cell
from genboost.train import blocks, checkpoint, engine_step, oracle


@pytest.fixture(scope="module")
def schema(repo_root):
    return yaml.safe_load((repo_root / "workflow/schemas/config.schema.yaml").read_text())


def cell(optimizer: str, **settings) -> Cell:
    return Cell(optimizer, lr=1e-3, wd=1e-4, rho=0.0, seed=0, epochs=2, **settings)


def test_the_schema_lists_the_registrys_optimizers(schema):
    listed = schema["properties"]["experiments"]["additionalProperties"]["properties"]["optimizers"]["items"]["enum"]
    assert listed == list(optimizers.NAMES)


def test_the_reference_trainer_builds_every_registered_optimizer():
    assert set(oracle.TORCH_OPTIMIZERS) == set(optimizers.NAMES)
    params = [torch.nn.Parameter(torch.zeros(2))]
    for name in optimizers.NAMES:
        opt, base = oracle.build_optimizer(cell(name), params)
        assert opt is base and isinstance(opt, torch.optim.Optimizer)
        assert opt.defaults["lr"] == 1e-3 and opt.defaults["weight_decay"] == 1e-4
    with pytest.raises(ValueError, match=r"cell.optimizer must be one of \['sgd', 'adam'\], got 'rmsprop'"):
        oracle.build_optimizer(cell("rmsprop"), params)


def test_the_engine_steps_every_registered_optimizer():
    assert list(engine_step.UPDATES) == list(optimizers.NAMES)


def test_a_cell_keeps_only_the_settings_its_optimizer_reads():
    other = {"momentum": 0.9, "adam_betas": (0.8, 0.99), "adam_eps": 1e-6}
    for name, entry in optimizers.OPTIMIZERS.items():
        kept = cell(name, **other).without_unused_settings()
        for setting, value in other.items():
            assert getattr(kept, setting) == (value if setting in entry.settings else DEFAULTS[setting])
    every = {s for o in optimizers.OPTIMIZERS.values() for s in o.settings}
    assert every <= set(DEFAULTS) and set(optimizers.unused_settings("rmsprop")) == every


def test_checkpoint_stacks_follow_the_state_each_optimizer_keeps():
    assert checkpoint.stacks(cell("sgd")) == ("stack",)
    assert checkpoint.stacks(cell("sgd", momentum=0.9)) == ("stack", "moments")
    assert checkpoint.stacks(cell("adam")) == ("stack", "moments", "squares")
    assert set(checkpoint.STACKS) == {"stack", optimizers.FIRST_MOMENT, optimizers.SECOND_MOMENT}


def test_engine_checks_and_wildcards_take_the_registrys_names():
    blocks.check_arguments([cell(n) for n in optimizers.NAMES], None, None, 8, [None] * len(optimizers.NAMES))
    with pytest.raises(ValueError, match=r"cells\[0\].optimizer must be one of \('sgd', 'adam'\), got 'rmsprop'"):
        blocks.check_arguments([cell("rmsprop")], None, None, 8, [None])
    pattern = re.compile(f"(?:{wiring.wildcard_constraints()['optimizer']})")
    assert all(pattern.fullmatch(n) for n in optimizers.NAMES) and not pattern.fullmatch("sgdx")


def test_labels_and_order():
    assert [optimizers.label(n) for n in ("sgd", "adam", "other")] == ["SGD", "Adam", "other"]
    assert optimizers.in_order(["zeta", "adam", "sgd", "adam", "alpha"]) == ["sgd", "adam", "alpha", "zeta"]
    with pytest.raises(ValueError, match=r"unknown optimizer 'x'; choose one of \['sgd', 'adam'\]"):
        optimizers.optimizer("x")


def test_cell_defaults_are_config_yamls_and_the_schemas(repo_root, schema):
    """One default per train setting: the Cell's equals config.yaml's value and the schema's default (where the
    schema has one: the keys it requires have none). Only `pack` differs: config.yaml packs lr, wd and seed, a
    config that leaves it out trains one job per cell."""
    config = yaml.safe_load((repo_root / "config.yaml").read_text())
    given = {**config["train"], "hidden": config["model"]["hidden"], "norm": config["model"]["norm"]}
    for f in fields(Cell):
        if f.name in AXES or f.name == "epochs":
            continue
        default = list(f.default) if isinstance(f.default, tuple) else f.default
        assert given[f.name] == default, f.name
    schema_defaults = grid.train_defaults()
    for key, value in schema_defaults.items():
        expected = {"threads": 1, "pack": []}.get(key, DEFAULTS.get(key))
        assert value == (list(expected) if isinstance(expected, tuple) else expected), key
    assert set(schema_defaults) | set(schema["properties"]["train"]["required"]) == set(grid.TRAIN_KEYS)
    assert config["train"]["threads"] == schema_defaults["threads"]


def test_a_config_that_leaves_train_keys_out_gets_the_schemas_defaults(repo_root):
    from workflow_helpers import checked_config

    config = yaml.safe_load((repo_root / "config.yaml").read_text())
    for key in grid.train_defaults():
        del config["train"][key]
    validated = grid.Study.from_config(checked_config(config)).experiment("main")
    direct = grid.Study.from_config(config).experiment("main")  # not through Snakemake's validate
    assert validated.train == direct.train and validated.pack == direct.pack == ()
    assert validated.cells() == direct.cells()
    adam = next(c for c in direct.cells() if c.optimizer == "adam")
    assert (adam.adam_betas, adam.adam_eps, adam.dtype, adam.flush_denormal) == ((0.9, 0.999), 1e-8, "float32", True)
