"""Longer runs of a cell go on from the end of a shorter run of the same cell.

The second-chance experiment trains the main experiment's Adam + SAM (rho 0.02) cells for 200 epochs
instead of 100. Everything else being equal (the lr schedule's first 100 epochs included: it does not
depend on the run's length), the first 100 epochs of the long run repeat the short run step for step.
So the short run's job keeps each such cell's end-of-training state in the store, and the long run's job
starts from it: half the work, the same bits (tested). Only an experiment listed earlier in the config
can lend its cells' states to a later one, so that the jobs' dependencies cannot form a cycle.
"""

from __future__ import annotations

from dataclasses import fields

from genboost.config import packing
from genboost.config.cell import Cell
from genboost.config.study import Experiment, Study

# Every setting of a cell but its length: cells equal in these are one run at different lengths.
RUN_FIELDS = tuple(f.name for f in fields(Cell) if f.name != "epochs")


def run_key(cell: Cell) -> tuple:
    """The cell but its epochs (a tuple, not dataclasses.replace: the Snakefile keys every cell of the study)."""
    return tuple(getattr(cell, name) for name in RUN_FIELDS)


class Lineage:
    """The cells of a study that are one run at different lengths (equal but for `epochs`)."""

    def __init__(self, study: Study):
        self.study = study
        self._order = {e.name: order for order, e in enumerate(study.experiments)}
        self._runs: dict[tuple, list[tuple[int, Experiment, Cell]]] = {}
        for order, experiment in enumerate(study.experiments):
            # by job group: the Snakefile asks for the same groups' cells again (packing caches them)
            for group in packing.jobs(experiment, 1):
                for cell in packing.job_cells(experiment, group):
                    self._runs.setdefault(run_key(cell), []).append((order, experiment, cell))

    def _same_run(self, cell: Cell) -> list[tuple[int, Experiment, Cell]]:
        """(experiment order, experiment, cell) of every cell of the study that is `cell` at some length."""
        return self._runs.get(run_key(cell), [])

    def prefix(self, experiment: Experiment, cell: Cell) -> tuple[Experiment, Cell] | None:
        """The longest shorter run of `cell` in an experiment listed before `experiment`, if any."""
        order = self._order[experiment.name]
        shorter = [(e, c) for o, e, c in self._same_run(cell) if o < order and c.epochs < cell.epochs]
        return max(shorter, key=lambda ec: ec[1].epochs, default=None)

    def extended(self, experiment: Experiment, cell: Cell) -> bool:
        """Whether a later experiment has a longer run of `cell` (so its end state is worth keeping)."""
        order = self._order[experiment.name]
        return any(o > order and c.epochs > cell.epochs for o, _, c in self._same_run(cell))

    def for_job(self, experiment: Experiment, cells: list[Cell]) -> tuple[dict[Cell, Cell], set[Cell]]:
        """`jobs.run_train_job`'s prefixes (cell -> its shorter run) and keep_state (cells a longer run needs)."""
        prefixes = {}
        for cell in cells:
            found = self.prefix(experiment, cell)
            if found:
                prefixes[cell] = found[1]
        return prefixes, {c for c in cells if self.extended(experiment, c)}
