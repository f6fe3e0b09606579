"""The optimizer registry (genboost/config/optimizers.py) and the places that derive from it (the defaults of
the settings it names: tests/test_settings.py)."""

import re

import pytest
import torch

from genboost import wiring
from genboost.config import optimizers, settings
from genboost.config.cell import DEFAULTS, Cell
from genboost.train import blocks, checkpoint, engine_step, oracle


@pytest.fixture(scope="module")
def schema():
    return settings.load_schema()


def cell(optimizer: str, **settings) -> Cell:
    return Cell(optimizer, lr=1e-3, wd=1e-4, rho=0.0, seed=0, epochs=2, **settings)


def test_the_schema_lists_the_registrys_optimizers(schema):
    listed = schema["properties"]["experiments"]["additionalProperties"]["properties"]["optimizers"]["items"]["enum"]
    assert listed == list(optimizers.NAMES)


def test_the_oracle_builds_every_registered_optimizer():
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
