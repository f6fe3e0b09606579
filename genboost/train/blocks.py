"""Which cells the engine trains together: blocks of cells that share every setting but their own lr, wd,
rho and seed, cut into near-equal chunks; and the checks of what a caller asks the engine for."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import fields
from itertools import pairwise

from genboost.config.cell import NORMS, PER_CELL, Cell
from genboost.config.optimizers import NAMES as OPTIMIZERS

# Cells per block, measured with benchmarks/bench_engine.py on the 2-core CPU (1 thread, real data, 64-64 MLP):
# per-model time falls to K = 48 and moves by at most ~12% from there to 192. A default job holds 72 cells.
BLOCK_SIZE = 96

# What a block's cells must share, which fixes the loop, the optimizer's code path and the shapes: every
# field of the cell but those the engine gives each cell its own, and whether SAM is on.
_SHARED = tuple(f.name for f in fields(Cell) if f.name not in PER_CELL)


def block_key(cell: Cell) -> tuple:
    return (cell.sam, *(getattr(cell, name) for name in _SHARED))


def plan_blocks(cells: Sequence[Cell], block_size: int, starts: Sequence[int] | None = None) -> list[list[int]]:
    """Indices of `cells` grouped by `block_key` (and start epoch, where some resume), each group cut into
    near-equal chunks of <= block_size."""
    groups: dict[tuple, list[int]] = {}
    for i, cell in enumerate(cells):
        groups.setdefault((block_key(cell), starts[i] if starts else 0), []).append(i)
    return [idx[a:b] for idx in groups.values() for a, b in even_chunks(len(idx), block_size)]


def even_chunks(n: int, size: int) -> list[tuple[int, int]]:
    """(start, stop) of the fewest near-equal chunks of range(n) that hold at most `size` each."""
    n_chunks = math.ceil(n / size)
    return list(pairwise(round(j * n / n_chunks) for j in range(n_chunks + 1)))


def check_arguments(cells: Sequence[Cell], max_steps, curve_every, block_size, states: list) -> None:
    for name, value, low in (("max_steps", max_steps, 0), ("curve_every", curve_every, 1)):
        if value is not None and (not isinstance(value, int) or value < low):
            raise ValueError(f"{name} must be an int >= {low} or None, got {value!r}")
    if not isinstance(block_size, int) or block_size < 1:
        raise ValueError(f"block_size must be an int >= 1, got {block_size!r}")
    for i, cell in enumerate(cells):
        _check_cell(i, cell)
    if len(states) != len(cells):
        raise ValueError(f"start_states has {len(states)} entries for {len(cells)} cells")
    for i, state in enumerate(states):
        if state is not None and not 0 < state["epoch"] <= cells[i].epochs:
            raise ValueError(f"start_states[{i}] ends at epoch {state['epoch']}, cell {i} has {cells[i].epochs}")


def _check_cell(i: int, cell: Cell) -> None:
    allowed = {
        "optimizer": OPTIMIZERS,
        "wd_mode": ("coupled", "decoupled"),
        "dtype": ("float32", "float64"),
        "norm": NORMS,
    }
    for field, values in allowed.items():
        if getattr(cell, field) not in values:
            raise ValueError(f"cells[{i}].{field} must be one of {values}, got {getattr(cell, field)!r}")
    for field in ("epochs", "batch_size", "t_max"):
        if getattr(cell, field) < 1:
            raise ValueError(f"cells[{i}].{field} must be >= 1, got {getattr(cell, field)!r}")
