"""The optimizers a cell can train with: one entry each, from which the rest of the package derives what it
needs (the cell's unused settings, the engine's checks, the checkpoint's stacks, the wildcard constraint, the
labels of tables and figures). The trainers' updates (`genboost.train.engine_step.UPDATES`, the oracle's
`TORCH_OPTIMIZERS`) are tables keyed by these names, kept complete by tests/test_optimizers.py: this module
holds no torch objects. The config schema lists the same names
(genboost/config/schema.yaml, `optimizers`; a test keeps the two equal).

Plain values only (no torch): the Snakefile imports this through `genboost.config.cell`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

# The state an optimizer keeps per parameter besides the weights, by the name of its stack in a checkpoint
# (`genboost.train.checkpoint`): a first moment (SGD's momentum buffer, Adam's running mean of gradients) and
# a second moment (Adam's running mean of squared gradients).
FIRST_MOMENT, SECOND_MOMENT = "moments", "squares"

# The optimizers' names, as the config, paths and cells.csv write them: code that treats one apart (the trainers'
# dispatch tables, the talk's conclusions) names it by these, never by a literal.
SGD, ADAM = "sgd", "adam"


@dataclass(frozen=True)
class Optimizer:
    name: str  # as the config, paths and cells.csv write it
    label: str  # as text for people writes it
    settings: tuple[str, ...]  # the cell settings (`genboost.config.cell.Cell` fields) only this optimizer reads
    state: Callable[[object], tuple[str, ...]]  # a cell -> the moments it keeps (FIRST_MOMENT, SECOND_MOMENT)


def _sgd_state(cell) -> tuple[str, ...]:
    return (FIRST_MOMENT,) if cell.momentum else ()  # torch.optim.SGD keeps no buffer without momentum


def _adam_state(cell) -> tuple[str, ...]:
    return (FIRST_MOMENT, SECOND_MOMENT)


OPTIMIZERS: dict[str, Optimizer] = {
    o.name: o
    for o in (
        Optimizer(SGD, "SGD", settings=("momentum",), state=_sgd_state),
        Optimizer(ADAM, "Adam", settings=("adam_betas", "adam_eps"), state=_adam_state),
    )
}
NAMES = tuple(OPTIMIZERS)


def optimizer(name: str) -> Optimizer:
    """The registry's entry of `name`; an unknown name is a ValueError listing the known ones."""
    if name not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {name!r}; choose one of {list(NAMES)}")
    return OPTIMIZERS[name]


def label(name: str) -> str:
    """An optimizer's name for people ("Adam"); a name the registry lacks as it is."""
    return OPTIMIZERS[name].label if name in OPTIMIZERS else name


def in_order(names) -> list[str]:
    """`names` without repeats in the registry's order, then any the registry lacks, sorted."""
    names = set(names)
    return [n for n in NAMES if n in names] + sorted(n for n in names if n not in OPTIMIZERS)


def unused_settings(name: str) -> tuple[str, ...]:
    """The settings other optimizers read and this one does not (all of them for an unknown name)."""
    own = OPTIMIZERS[name].settings if name in OPTIMIZERS else ()
    return tuple(s for o in OPTIMIZERS.values() for s in o.settings if s not in own)
