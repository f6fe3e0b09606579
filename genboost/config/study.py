"""The study: its experiments and their cells, checked beyond the schema, and how cells pack into jobs.

Paths, wildcards and resources, which no result depends on, are the Snakefile's wiring (genboost.wiring).
"""

from __future__ import annotations

import hashlib
import itertools
import json
import logging
import os
from dataclasses import dataclass, field
from typing import get_type_hints

from genboost.config import links, settings
from genboost.config import sweep as sweeping
from genboost.config.cell import AXES, DEFAULTS, SETTINGS, Cell
from genboost.config.datasets import dataset_settings, parsed

# Defined beside the sweep's checks and formats, and part of this module's API.
from genboost.config.sweep import fmt_number as fmt_number
from genboost.config.sweep import fmt_value as fmt_value
from genboost.errors import ConfigError

log = logging.getLogger(__name__)

# The config's list key of each grid axis: its plural (optimizers, lrs, wds, rhos, seeds).
GRID_KEYS = {axis: f"{axis}s" for axis in AXES}
# The type of each axis's values, the Cell field's (str for optimizer, float for lr/wd/rho, int for seed).
AXIS_TYPES = {axis: get_type_hints(Cell)[axis] for axis in AXES}
# A configuration: a cell's coordinates but its seed (the last axis), over which the statistics pair and average.
CONFIG_AXES = AXES[:-1]
# The axes each table of results is one of (with the swept settings' values): its rows are lr, its columns wd.
TABLE_AXES = ("optimizer", "rho")
IN_TABLE_AXES = tuple(a for a in CONFIG_AXES if a not in TABLE_AXES)  # a table's rows and columns: lr, wd
# `train` keys that decide how a job runs, not what a cell computes (Cell holds the rest). `curve_every`, the
# learning-curve interval, changes what a result records, not its numbers: it keys stored results, not cells.
JOB_KEYS = ("device", "threads", "pack", "curve_every")
# Every `train` key, all of which an experiment may override: the Cell's settings but `hidden` (from
# `model.hidden`) and `norm` (from `model.norm`), plus `sam_epochs` (a SAM cell's `epochs`) and the job keys.
TRAIN_KEYS = (*(s for s in SETTINGS if s not in ("hidden", "norm")), "sam_epochs", *JOB_KEYS)


@dataclass(frozen=True)
class Experiment:
    name: str
    grid: dict  # axis -> tuple of canonical values (str for optimizer, float for lr/wd/rho, int for seed)
    train: dict  # resolved train settings
    hidden: tuple[int, ...]
    preprocess: dict = field(default_factory=dict)  # resolved preprocessing settings, its dataset's included
    reference_experiment: str = ""  # the experiment of the published table (config key reference) it is compared with
    continues: str = ""  # the experiment whose runs it trains longer (its setup's second chance), if any
    sweep: dict = field(default_factory=dict)  # swept setting -> tuple of its values (genboost.config.sweep)
    norm: str = "none"  # config key model.norm
    # Each pack's cells, by the values of its free axes (`pack_cells`): the Snakefile asks for a job's cells several
    # times (params, inputs, priority) and building 100,000 cells takes seconds. Lives and dies with the experiment.
    _packs: dict = field(default_factory=dict, init=False, repr=False, compare=False)

    @property
    def dataset(self) -> str:
        """The name of its dataset (config key datasets)."""
        return self.preprocess["dataset"]["name"]

    @property
    def data_id(self) -> str:
        """The name of its preprocessed split's folder: experiments with equal preprocessing share one."""
        return preprocess_id(self.preprocess)

    def setup(self) -> tuple:
        """What makes two experiments one setup of the study, whatever their grids and run lengths."""
        train = {k: v for k, v in self.train.items() if k not in ("epochs", "sam_epochs", *JOB_KEYS)}
        swept = tuple(sorted(self.sweep))  # which settings it sweeps; their values are more of its grid
        return (self.data_id, self.hidden, self.norm, tuple(sorted((k, str(v)) for k, v in train.items())), swept)

    @property
    def axes(self) -> tuple[str, ...]:
        """Its axes in path order: the swept settings come between rho and seed."""
        return (*AXES[:-1], *self.sweep, AXES[-1])

    def levels(self, axis: str) -> tuple:
        return self.grid[axis] if axis in self.grid else self.sweep[axis]

    @property
    def pack(self) -> tuple[str, ...]:
        """The axes one job trains together (`train.pack` may name a setting this experiment does not sweep)."""
        return tuple(a for a in self.axes if a in self.train["pack"])

    @property
    def device(self) -> str:
        return self.train["device"]

    def cell(self, optimizer: str, lr: float, wd: float, rho: float, seed: int, **swept) -> Cell:
        """The cell at these coordinates; `swept` gives the values of swept settings (else the experiment's)."""
        t = {**self.train, **swept}
        shared = {k: _like(DEFAULTS[k], t[k]) for k in DEFAULTS}
        epochs = t["sam_epochs"] if rho > 0 else t["epochs"]
        hidden = tuple(swept.get("hidden", self.hidden))
        norm = swept.get("norm", self.norm)
        cell = Cell(optimizer, lr, wd, rho, seed, epochs=epochs, hidden=hidden, norm=norm, **shared)
        return cell.without_unused_settings()

    def coordinates(self, choices: dict | None = None) -> list[dict]:
        """Every combination of the axes' values (`choices` narrows some axes), as axis -> value."""
        choices = choices or {}
        values = [choices.get(a, self.levels(a)) for a in self.axes]
        return [dict(zip(self.axes, combo, strict=True)) for combo in itertools.product(*values)]

    def cells(self) -> list[Cell]:
        return [self.cell(**c) for c in self.coordinates()]

    def fresh_cells(self, config: dict[str, str], seeds) -> list[Cell]:
        """One configuration (the canonical text of its every axis but the seed) at `seeds`, outside the grid."""
        values = {a: self._lookup(a, config[a]) for a in self.axes[:-1]}
        return [self.cell(**values, seed=seed) for seed in seeds]

    def wildcards(self, cell: Cell) -> dict:
        """axis -> canonical text of the cell's value, the swept settings included."""
        return {**wildcards_of(cell), **{k: fmt_value(k, sweeping.level_of(cell, k)) for k in self.sweep}}

    def pack_cells(self, values: dict) -> list[Cell]:
        """The cells of one pack, in job order, from the canonical text of its free axes' values (the axes that
        `train.pack` does not name); cached."""
        key = tuple(values[a] for a in self.axes if a not in self.pack)
        if key not in self._packs:
            free = {a: (self._lookup(a, values[a]),) for a in self.axes if a not in self.pack}
            self._packs[key] = [self.cell(**c) for c in self.coordinates(free)]
        return self._packs[key]

    def pack_size(self) -> int:
        size = 1
        for axis in self.pack:
            size *= len(self.levels(axis))
        return size

    def pack_cost(self) -> int:
        """Gradient evaluations of one pack, in units of one model-epoch: the scheduler starts the longest first."""
        longest = {k: max(self.sweep.get(k, (self.train[k],))) for k in ("epochs", "sam_epochs")}
        epochs = max(longest["epochs"], 2 * longest["sam_epochs"] if any(r > 0 for r in self.grid["rho"]) else 0)
        return self.pack_size() * epochs

    def _lookup(self, axis: str, text: str):
        for value in self.levels(axis):
            if fmt_value(axis, value) == text:
                return value
        raise ConfigError(f"experiment {self.name}: {axis}={text!r} is not in the grid {self.levels(axis)}")


def wildcards_of(cell: Cell) -> dict:
    return {a: fmt_value(a, getattr(cell, a)) for a in AXES}


@dataclass(frozen=True)
class Study:
    """The experiments are in the order of their names: the config's order means nothing (Snakemake's --config moves
    the experiments it names first), so that reordering the config changes no plan and no summary."""

    results: str
    experiments: tuple[Experiment, ...]
    analysis: dict
    baseline: str  # the experiment the summary compares every other one with (config key baseline)
    confirm: dict | None = None  # config key confirm, its defaults filled in; None: no confirmation stage

    @classmethod
    def from_config(cls, config: dict) -> Study:
        """The study of a config that the schema has validated (see genboost.config.settings); the schema's
        train, model, preprocess and experiment defaults fill in what a config given directly (not through
        settings.checked) leaves out."""
        settings.check_finite(config, "config")
        train = settings.filled(config["train"], "properties", "train")
        model = settings.filled(config["model"], "properties", "model")
        preprocess = settings.filled(config["preprocess"], "properties", "preprocess")
        enabled = settings.experiment_defaults()["enabled"]
        datasets = parsed(config["datasets"])
        experiments = tuple(
            _experiment(name, spec, train, (tuple(model["hidden"]), model["norm"]), preprocess, datasets)
            for name, spec in sorted(config["experiments"].items())
            if spec.get("enabled", enabled)
        )
        for experiment in experiments:
            sweeping.check(experiment)
            for warning in settings.schedule_warnings(experiment):
                log.warning(warning)
            links.check_continues(experiment, config["experiments"], experiments)
        if not experiments:
            raise ConfigError("config key experiments: every experiment has enabled: false; nothing to run")
        analysis = dict(config.get("analysis") or {})  # the schema's defaults filled in; a measure not given is off
        results = config.get("results", settings.defaults()["results"])
        results = os.path.normpath(str(results))  # ./out, out/ and out are one folder
        baseline = links.baseline(config.get("baseline"), experiments, config["experiments"])
        confirm = config.get("confirm", {})
        confirm = None if confirm is None else settings.filled(confirm, "properties", "confirm", "then")
        return cls(results=results, experiments=experiments, analysis=analysis, baseline=baseline, confirm=confirm)

    def experiment(self, name: str) -> Experiment:
        for e in self.experiments:
            if e.name == name:
                return e
        raise ConfigError(f"no experiment named {name!r} in config key experiments")

    def preprocessings(self) -> dict[str, dict]:
        """Each distinct preprocessing of the study's experiments, by its data folder's name."""
        return {e.data_id: e.preprocess for e in self.experiments}

    def compared(self, published: set[str]) -> dict[str, Experiment | None]:
        """The experiments compared with a published table that has these experiments, each with its `partner`
        (the talk's conclusions that need two experiments compare a second chance with the run it continues).
        Not one that sweeps a setting (genboost/config/sweep.py): the table holds one batch size, width... per
        lr x wd cell. Each must run on the talk's data (`links.check_reference`)."""
        compared = [e for e in self.experiments if e.reference_experiment in published and not e.sweep]
        for e in compared:
            links.check_reference(e)
        return {e.name: self.partner(e) for e in compared}

    def talk_experiments(self, compared: dict[str, Experiment | None]) -> dict[str, dict]:
        """The experiments the talk's conclusions are checked on, each on its own grid (the summary's matrix; the
        confirmation confirms the same): every enabled experiment that continues none (a second chance is judged
        with the run it continues, on C4), sweeps nothing (a configuration of the talk is one model per seed) and
        trains on true labels -> its dataset, its second chance (the experiment that continues it) or None, and
        whether it is `published`: compared with the talk's tables (`compared`, `Study.compared`)."""
        return {
            e.name: {
                "dataset": e.dataset,
                "second_chance": p.name if (p := self.partner(e)) else None,
                "published": e.name in compared,
            }
            for e in self.experiments
            if not (e.continues or e.sweep or e.train["shuffle_labels"])
        }

    def setups(self, compared: dict[str, Experiment | None]) -> dict[str, str | None]:
        """The `talk_experiments` compared with the talk's tables -> their second chance, if any."""
        return {n: t["second_chance"] for n, t in self.talk_experiments(compared).items() if t["published"]}

    def judged_on_own_cells(self, compared: dict[str, Experiment | None]) -> dict[str, dict]:
        """The other `talk_experiments`, whose verdicts come from their own cells alone (no published table of their
        data or grid) -> their dataset and second chance."""
        return {
            n: {"dataset": t["dataset"], "second_chance": t["second_chance"]}
            for n, t in self.talk_experiments(compared).items()
            if not t["published"]
        }

    def confirmed(self, compared: dict[str, Experiment | None]) -> dict[str, str | None]:
        """The experiments whose claims the confirmation stage trains again on fresh seeds: wherever the summary
        judges the talk's conclusions (`talk_experiments`), each -> its second chance or None; none
        when config key confirm is null. Refuses fresh seeds that are grid seeds of these experiments."""
        judged = {n: t["second_chance"] for n, t in self.talk_experiments(compared).items()}
        names = sorted({*judged, *(s for s in judged.values() if s)}) if self.confirm else []
        links.check_fresh_seeds(self.fresh_seeds(), {n: self.experiment(n).grid["seed"] for n in names})
        return judged if self.confirm else {}

    def fresh_seeds(self) -> tuple[int, ...]:
        """The confirmation stage's seeds (config keys confirm.first_seed and confirm.seeds); none when it is off."""
        first, count = (self.confirm["first_seed"], self.confirm["seeds"]) if self.confirm else (0, 0)
        return tuple(range(first, first + count))

    def partner(self, experiment: Experiment) -> Experiment | None:
        """The experiment it continues (config key `continues`), else the first by name that continues it; None
        when there is no such enabled experiment."""
        for e in self.experiments:
            if e.name == experiment.continues or (e.continues and e.continues == experiment.name):
                return e
        return None


def preprocess_id(preprocessing: dict) -> str:
    """A short stable name for a preprocessing: the start of the SHA-256 of its canonical JSON."""
    blob = json.dumps(preprocessing, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


def _like(default, value):
    """`value` in the type of the setting's default, so 0 and 0.0 (or [0.9, 0.999] and a tuple) are one cell."""
    if isinstance(default, tuple):
        return tuple(_like(d, v) for d, v in zip(default, value, strict=True))
    return float(value) if isinstance(default, float) else value


def _experiment(
    name: str, spec: dict, base_train: dict, model: tuple, base_preprocess: dict, datasets: dict
) -> Experiment:
    """`model`: (hidden widths, norm), config keys model.hidden and model.norm."""
    train = {**base_train, **{k: v for k, v in spec.items() if k in TRAIN_KEYS}}
    grid = {axis: tuple(AXIS_TYPES[axis](v) for v in spec[key]) for axis, key in GRID_KEYS.items()}
    return Experiment(
        name=name,
        grid=grid,
        train=train,
        hidden=model[0],
        norm=model[1],
        preprocess={
            **base_preprocess,
            **spec.get("preprocess", {}),
            "dataset": dataset_settings(name, spec, datasets),
        },
        reference_experiment=spec.get("reference_experiment", name),
        continues=spec.get("continues", ""),
        sweep=sweeping.levels(name, spec),
    )
