"""How an experiment's cells split into train jobs: its packs (the cells that share the values of the axes
`train.pack` does not name, its free axes) and, to fill the cores, each pack in equal parts, one job each.

A job is named by its pack's values and its part, `<i>of<n>` (the i-th of n parts), so any process can tell a
job's cells from its name alone. Which models train together never changes a number (the engine's numbers are
bit-identical alone or in any pack), so the parts may follow the core count: a run on other cores plans other
jobs, which take every cell from the store.
"""

from __future__ import annotations

import math
import re

from genboost.config import sweep as sweeping
from genboost.config.cell import Cell
from genboost.config.study import Experiment, fmt_value
from genboost.errors import ConfigError

# A part holds at least this many models where it can: below it the engine's per-model time rises fast
# (benchmarks/README.md: K = 8 is 1.5-2x slower per model than K = 48).
MIN_PART_MODELS = 8
PART = re.compile(r"([1-9][0-9]*)of([1-9][0-9]*)")
PART_CONSTRAINT = "[1-9][0-9]*of[1-9][0-9]*"


def free_axes(experiment: Experiment) -> tuple[str, ...]:
    """The axes that name a job's pack: those `train.pack` does not name."""
    return tuple(a for a in experiment.axes if a not in experiment.pack)


def pack_count(experiment: Experiment) -> int:
    return math.prod(len(experiment.levels(a)) for a in free_axes(experiment))


def parts(experiment: Experiment, cores: int | None) -> int:
    """The fewest parts per pack that make the experiment's number of jobs a multiple of `cores`, so that its
    equal jobs fill every core to the end; no part under MIN_PART_MODELS models unless a pack is smaller.
    None (a cluster, where Snakemake knows no core count) or a CUDA experiment (the GPU, not the cores, does the
    work, faster the more models it trains at once): one job per pack."""
    if not cores or cores < 2 or experiment.device == "cuda":
        return 1
    wanted = cores // math.gcd(pack_count(experiment), cores)
    return max(1, min(wanted, experiment.pack_size() // MIN_PART_MODELS))


def part_name(index: int, count: int) -> str:
    return f"{index}of{count}"


def part_names(count: int) -> list[str]:
    return [part_name(i, count) for i in range(1, count + 1)]


def parse_part(text: str) -> tuple[int, int]:
    """(i, n) of a job's part name `<i>of<n>`."""
    m = PART.fullmatch(text)
    if not m or int(m.group(1)) > int(m.group(2)):
        raise ConfigError(f"job part {text!r} is not <i>of<n> with 1 <= i <= n")
    return int(m.group(1)), int(m.group(2))


def bounds(size: int, index: int, count: int) -> tuple[int, int]:
    """The positions [start, end) of part `index` (1-based) of `count` equal parts of a pack of `size`."""
    return (index - 1) * size // count, index * size // count


def job_cells(experiment: Experiment, wildcards: dict) -> list[Cell]:
    """The cells of one train job, from its name: its pack's values and its part."""
    cells = experiment.pack_cells(wildcards)
    index, count = parse_part(wildcards["part"])
    if count > len(cells):
        raise ConfigError(f"experiment {experiment.name}: {count} parts of a pack of {len(cells)} cells")
    start, end = bounds(len(cells), index, count)
    return cells[start:end]


def job_of(experiment: Experiment, cell: Cell, count: int) -> dict[str, str]:
    """The name (wildcards) of the job of `count` parts per pack that trains `cell`."""
    position = 0  # in its pack, whose cells run over the packed axes like itertools.product
    for axis in experiment.pack:
        levels = experiment.levels(axis)
        position = position * len(levels) + levels.index(sweeping.level_of(cell, axis))
    index = next(i for i in range(1, count + 1) if position < bounds(experiment.pack_size(), i, count)[1])
    free = {a: fmt_value(a, sweeping.level_of(cell, a)) for a in free_axes(experiment)}
    return {**free, "part": part_name(index, count)}


def jobs(experiment: Experiment, count: int) -> list[dict[str, str]]:
    """The names (wildcards) of all the experiment's jobs at `count` parts per pack."""
    free = free_axes(experiment)
    return [
        {**{a: fmt_value(a, c[a]) for a in free}, "part": part}
        for c in experiment.coordinates({a: (experiment.levels(a)[0],) for a in experiment.pack})
        for part in part_names(count)
    ]


def cell_at(experiment: Experiment, wildcards: dict) -> Cell:
    """The cell whose every axis has this canonical text (one model named by its path)."""
    values = {}
    for axis in experiment.axes:
        found = [v for v in experiment.levels(axis) if fmt_value(axis, v) == wildcards[axis]]
        if not found:
            raise ConfigError(f"experiment {experiment.name}: {axis}={wildcards[axis]!r} is not in the grid")
        values[axis] = found[0]
    return experiment.cell(**values)
