"""Longer runs of a cell go on from the end of a shorter run of the same cell.

The second-chance experiment trains the main experiment's Adam + SAM (rho 0.02) cells for 200 epochs
instead of 100. Everything else being equal (the lr schedule's first 100 epochs included: it does not
depend on the run's length), the first 100 epochs of the long run repeat the short run step for step.
So the short run's job keeps each such cell's end-of-training state in the store, and the long run's job
starts from it: half the work, the same bits (tested). An experiment goes on only from the experiment it
`continues` (config key), which itself continues none (genboost.config.study checks it), so the jobs'
dependencies cannot form a cycle whatever the experiments' order.
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
    """The cells of a study that go on from a shorter run of themselves: its `shorter_run` in the experiment
    their experiment continues; and the cells that a longer run goes on from (`continued`)."""

    def __init__(self, study: Study):
        self.study = study
        names = {e.name for e in study.experiments}
        self._continued = {e.name: study.experiment(e.continues) for e in study.experiments if e.continues in names}
        # of each continued experiment: run key -> its cells of that run (several where it sweeps epochs), and run
        # key -> the most epochs of that run in an experiment that continues it
        self._runs: dict[str, dict[tuple, list[Cell]]] = {}
        self._longest: dict[str, dict[tuple, int]] = {}
        for name, continued in self._continued.items():
            runs = self._runs.setdefault(continued.name, {})
            if not runs:
                for cell in _cells(continued):
                    runs.setdefault(run_key(cell), []).append(cell)
            longest = self._longest.setdefault(continued.name, {})
            for cell in _cells(study.experiment(name)):
                longest[run_key(cell)] = max(longest.get(run_key(cell), 0), cell.epochs)

    def shorter_run(self, experiment: Experiment, cell: Cell) -> tuple[Experiment, Cell] | None:
        """The longest shorter run of `cell` in the experiment that `experiment` continues, if any."""
        continued = self._continued.get(experiment.name)
        if continued is None:
            return None
        shorter = [c for c in self._runs[continued.name].get(run_key(cell), []) if c.epochs < cell.epochs]
        return (continued, max(shorter, key=lambda c: c.epochs)) if shorter else None

    def continued(self, experiment: Experiment, cell: Cell) -> bool:
        """Whether an experiment that continues `experiment` has a longer run of `cell` (so its end state is worth
        keeping)."""
        return self._longest.get(experiment.name, {}).get(run_key(cell), 0) > cell.epochs

    def for_job(self, experiment: Experiment, cells: list[Cell]) -> tuple[dict[Cell, Cell], set[Cell]]:
        """`jobs.TrainJob`'s shorter_runs (cell -> its shorter run) and continued (the cells a longer run goes on
        from)."""
        shorter_runs = {}
        for cell in cells:
            found = self.shorter_run(experiment, cell)
            if found:
                shorter_runs[cell] = found[1]
        return shorter_runs, {c for c in cells if self.continued(experiment, c)}


def _cells(experiment: Experiment) -> list[Cell]:
    """Its cells pack by pack: the Snakefile asks for the same packs' cells again (the experiment caches them)."""
    return [cell for names in packing.jobs(experiment, 1) for cell in packing.job_cells(experiment, names)]
