"""The study's grid: config validation beyond the schema, cells, job packing and paths.

Everything the Snakefile needs to wire the rules lives here, so that it can be tested without Snakemake.
"""

from __future__ import annotations

import csv
import hashlib
import itertools
import json
import math
import os
from dataclasses import dataclass, field

from genboost.config import sweep as sweeping
from genboost.config.cell import AXES, DEFAULTS, SETTINGS, Cell

# Defined beside the sweep's checks and formats, and part of this module's API.
from genboost.config.sweep import ConfigError as ConfigError
from genboost.config.sweep import fmt_number as fmt_number
from genboost.config.sweep import fmt_value as fmt_value

# Grid axes and the config's list key of each.
GRID_KEYS = {"optimizer": "optimizers", "lr": "lrs", "wd": "wds", "rho": "rhos", "seed": "seeds"}
# `train` keys that decide how a job runs, not what a cell computes (Cell holds the rest).
JOB_DEFAULTS = {"device": "auto", "threads": 1, "pack": []}
# Every `train` key, all of which an experiment may override: the Cell's settings but `hidden` (from
# `model.hidden`), plus `sam_epochs` (a SAM cell's `epochs`) and the job keys.
TRAIN_KEYS = (*(s for s in SETTINGS if s != "hidden"), "sam_epochs", *JOB_DEFAULTS)
TRAIN_DEFAULTS = {**{k: list(v) if isinstance(v, tuple) else v for k, v in DEFAULTS.items()}, **JOB_DEFAULTS}
ANALYSIS_DEFAULTS = {"curve_every": None, "sharpness_radii": [], "hessian_iters": None, "pacbayes": None}


def run_pattern(axes) -> str:
    """The metrics.json path of a cell, one `axis={axis}` level per axis, in the experiment's axis order."""
    levels = "/".join(f"{a}={{{a}}}" for a in axes)
    return f"{{results}}/{{experiment}}/runs/{levels}/metrics.json"


# The layout of an experiment that sweeps nothing (unchanged since before sweeps: its results stay valid).
RUN_PATTERN = run_pattern(AXES)


@dataclass(frozen=True)
class Experiment:
    name: str
    grid: dict  # axis -> tuple of canonical values (str for optimizer, float for lr/wd/rho, int for seed)
    train: dict  # resolved train settings
    hidden: tuple[int, ...]
    preprocess: dict = field(default_factory=dict)  # resolved preprocessing settings
    reference_experiment: str = ""  # the experiment of the reference table it is compared with
    sweep: dict = field(default_factory=dict)  # swept setting -> tuple of its values (genboost.config.sweep)

    @property
    def data_id(self) -> str:
        """The name of its preprocessed split's folder: experiments with equal preprocessing share one."""
        return preprocess_id(self.preprocess)

    def data_paths(self, results: str) -> dict[str, str]:
        return {name: f"{results}/data/{self.data_id}/{name}.csv" for name in ("train", "test")}

    def setup(self) -> tuple:
        """What makes two experiments one setup of the study, whatever their grids and run lengths."""
        train = {k: v for k, v in self.train.items() if k not in ("epochs", "sam_epochs", *JOB_DEFAULTS)}
        swept = tuple(sorted((k, str(v)) for k, v in self.sweep.items()))
        return (self.data_id, self.hidden, tuple(sorted((k, str(v)) for k, v in train.items())), swept)

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
        settings = {k: _like(DEFAULTS[k], t[k]) for k in DEFAULTS}
        epochs = t["sam_epochs"] if rho > 0 else t["epochs"]
        hidden = tuple(swept.get("hidden", self.hidden))
        cell = Cell(optimizer, lr, wd, rho, seed, epochs=epochs, hidden=hidden, **settings)
        return cell.without_unused_settings()

    def coordinates(self, choices: dict | None = None) -> list[dict]:
        """Every combination of the axes' values (`choices` narrows some axes), as axis -> value."""
        choices = choices or {}
        values = [choices.get(a, self.levels(a)) for a in self.axes]
        return [dict(zip(self.axes, combo, strict=True)) for combo in itertools.product(*values)]

    def cells(self) -> list[Cell]:
        return [self.cell(**c) for c in self.coordinates()]

    def wildcards(self, cell: Cell) -> dict:
        """axis -> canonical text of the cell's value, the swept settings included."""
        return {**wildcards_of(cell), **{k: fmt_value(k, sweeping.level_of(cell, k)) for k in self.sweep}}

    def metrics_path(self, results: str, cell: Cell) -> str:
        return run_pattern(self.axes).format(results=results, experiment=self.name, **self.wildcards(cell))

    def job_outputs(self, results: str) -> list[str]:
        """The output patterns of one train job: packed axes filled in, the others left as {wildcards}."""
        fixed = {a: "{" + a + "}" for a in self.axes if a not in self.pack}
        packed = [[(a, fmt_value(a, v)) for v in self.levels(a)] for a in self.pack]
        return [
            run_pattern(self.axes).format(results=results, experiment=self.name, **fixed, **dict(combo))
            for combo in itertools.product(*packed)
        ]

    def job_cells(self, wildcards: dict) -> list[Cell]:
        """The cells one train job trains, from its wildcards (the non-packed axes)."""
        free = {a: (self._lookup(a, wildcards[a]),) for a in self.axes if a not in self.pack}
        return [self.cell(**c) for c in self.coordinates(free)]

    def job_params(self, wildcards) -> list[dict]:
        """The cells of one job as plain dicts: a Snakemake param, so a changed cell reruns its job."""
        return [c.to_dict() for c in self.job_cells(dict(wildcards))]

    def job_size(self) -> int:
        size = 1
        for axis in self.pack:
            size *= len(self.levels(axis))
        return size

    def job_log(self, results: str) -> str:
        free = [a for a in self.axes if a not in self.pack]
        name = "/".join(f"{a}={{{a}}}" for a in free) or "all"
        return f"{results}/logs/{self.name}/train/{name}.log"

    def job_threads(self) -> int:
        """Torch threads of one train job (`train.threads`); Snakemake caps it at --cores."""
        return self.train["threads"]

    def job_cost(self) -> int:
        """Gradient evaluations of one job, in units of one model-epoch: the scheduler starts the longest first."""
        longest = {k: max(self.sweep.get(k, (self.train[k],))) for k in ("epochs", "sam_epochs")}
        epochs = max(longest["epochs"], 2 * longest["sam_epochs"] if any(r > 0 for r in self.grid["rho"]) else 0)
        return self.job_size() * epochs

    def job_resources(self) -> dict:
        """Slurm-sized resources: a generous runtime from the job's model-epochs, GPU only when training on CUDA."""
        minutes = 10 + math.ceil(self.job_cost() * 0.03 / 60)  # ~10x the measured CPU cost
        mem_mb = 1000 + 4 * self.job_size()
        resources = {  # a retry (after a time-out or running out of memory) gets more of both
            "runtime": lambda wildcards, attempt: minutes * attempt,
            "mem_mb": lambda wildcards, attempt: mem_mb * attempt,
        }
        if self.device == "cuda":
            resources["gpu"] = 1
        return resources

    def _lookup(self, axis: str, text: str):
        for value in self.levels(axis):
            if fmt_value(axis, value) == text:
                return value
        raise ConfigError(f"experiment {self.name}: {axis}={text!r} is not in the grid {self.levels(axis)}")


def wildcards_of(cell: Cell) -> dict:
    return {a: fmt_value(a, getattr(cell, a)) for a in AXES}


@dataclass(frozen=True)
class Study:
    results: str
    experiments: tuple[Experiment, ...]
    analysis: dict

    @classmethod
    def from_config(cls, config: dict) -> Study:
        """The study of a config that the schema has validated (see genboost.config.settings)."""
        _check_finite(config, "config")
        train = {**TRAIN_DEFAULTS, **config["train"]}
        hidden = tuple(config["model"]["hidden"])
        experiments = tuple(
            _experiment(name, spec, train, hidden, config["preprocess"])
            for name, spec in config["experiments"].items()
            if spec.get("enabled", True)
        )
        for experiment in experiments:
            sweeping.check(experiment)
        if not experiments:
            raise ConfigError("config key experiments: every experiment has enabled: false; nothing to run")
        analysis = {**ANALYSIS_DEFAULTS, **(config.get("analysis") or {})}
        results = os.path.normpath(str(config.get("results", "results")))  # ./out, out/ and out are one folder
        return cls(results=results, experiments=experiments, analysis=analysis)

    def all_metrics(self) -> list[str]:
        return [e.metrics_path(self.results, c) for e in self.experiments for c in e.cells()]

    def experiment(self, name: str) -> Experiment:
        for e in self.experiments:
            if e.name == name:
                return e
        raise ConfigError(f"no experiment named {name!r} in config key experiments")

    def preprocessings(self) -> dict[str, dict]:
        """Each distinct preprocessing of the study's experiments, by its data folder's name."""
        return {e.data_id: e.preprocess for e in self.experiments}

    def compared(self, reference_names: set[str]) -> dict[str, Experiment | None]:
        """The experiments compared with a reference table that has these experiments, each with its setup's
        partner for the talk's conclusions that need two experiments (second chance against main). Not one that
        sweeps a setting (genboost/config/sweep.py): the table holds one batch size, width... per lr x wd cell."""
        return {
            e.name: self.partner(e, "second_chance" if e.reference_experiment == "main" else "main")
            for e in self.experiments
            if e.reference_experiment in reference_names and not e.sweep
        }

    def setups(self, compared: dict[str, Experiment | None]) -> dict[str, str | None]:
        """The setups the talk's conclusions are checked on: main-like experiment -> its second chance, if any."""
        main_like = (n for n in compared if self.experiment(n).reference_experiment == "main")
        return {n: compared[n].name if compared[n] else None for n in main_like}

    def partner(self, experiment: Experiment, reference_experiment: str) -> Experiment | None:
        """The first experiment of the same setup that is compared with `reference_experiment`, if any."""
        for e in self.experiments:
            if e.reference_experiment == reference_experiment and e.setup() == experiment.setup():
                return e
        return None


def preprocess_id(settings: dict) -> str:
    """A short stable name for a preprocessing: the start of the SHA-256 of its canonical JSON."""
    blob = json.dumps(settings, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


def _check_finite(value, key: str) -> None:
    """No inf or nan anywhere: JSON Schema has no word for a finite float."""
    if isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(f"config key {key}: {value!r} is not a finite number")
    if isinstance(value, dict):
        for k, v in value.items():
            _check_finite(v, f"{key}.{k}" if key != "config" else k)
    elif isinstance(value, list):
        for v in value:
            _check_finite(v, key)


def _like(default, value):
    """`value` in the type of the setting's default, so 0 and 0.0 (or [0.9, 0.999] and a tuple) are one cell."""
    if isinstance(default, tuple):
        return tuple(_like(d, v) for d, v in zip(default, value, strict=True))
    return float(value) if isinstance(default, float) else value


def _experiment(name: str, spec: dict, base_train: dict, hidden: tuple[int, ...], base_preprocess: dict) -> Experiment:
    train = {**base_train, **{k: v for k, v in spec.items() if k in TRAIN_KEYS}}
    grid = {axis: tuple(_axis_value(axis, v) for v in spec[key]) for axis, key in GRID_KEYS.items()}
    return Experiment(
        name=name,
        grid=grid,
        train=train,
        hidden=hidden,
        preprocess={**base_preprocess, **spec.get("preprocess", {})},
        reference_experiment=spec.get("reference_experiment", name),
        sweep=sweeping.levels(name, spec),
    )


def _axis_value(axis: str, value):
    if axis == "optimizer":
        return str(value)
    return int(value) if axis == "seed" else float(value)


def wildcard_constraints() -> dict:
    """Regexes that only match canonical values, so 3e-5 and 0.00003 can never be two cells."""
    number = r"-?(0|[1-9][0-9]*)(\.[0-9]+)?(e[-+][0-9]+)?"
    axes = {"optimizer": "sgd|adam", "lr": number, "wd": number, "rho": number, "seed": "[0-9]+"}
    swept = {k: sweeping.wildcard_constraint(k) for k in sweeping.SWEEPABLE}
    return {**axes, **swept, "data": "[0-9a-f]{12}"}


def reference_experiments(path: str | None) -> set[str]:
    """The experiment names of a reference table (config key reference); empty when there is none."""
    if not path:
        return set()
    try:
        with open(path, newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
    except OSError as e:
        raise ConfigError(f"config key reference: cannot read {path}: {e.strerror}") from None
    if not rows or "experiment" not in rows[0]:
        raise ConfigError(f"config key reference: {path} has no 'experiment' column (format: reference/README.md)")
    return {row["experiment"] for row in rows}


def figure_paths(results: str, experiment: str, analysis: dict) -> dict[str, str]:
    """Output paths of one experiment's figures: name -> path (PNG and PDF of each); learning curves and the
    measures against test MSE where the analysis records them."""
    names = ["heatmap", "lr_curves"]
    names += ["learning_curves"] if analysis.get("curve_every") is not None else []
    names += ["measures"] if measured(analysis) else []
    return {f"{n}_{ext}": f"{results}/{experiment}/figures/{n}.{ext}" for n in names for ext in ("png", "pdf")}


def vs_talk_paths(results: str, experiment: str) -> dict[str, str]:
    """The comparison of one experiment with the reference table: Markdown, CSV and a figure."""
    stem = f"{results}/{experiment}/vs_talk"
    return {"md": f"{stem}.md", "csv": f"{stem}.csv", "png": f"{stem}.png", "pdf": f"{stem}.pdf"}


def measured(analysis: dict) -> bool:
    """Whether train jobs measure flatness or generalization measures (they then keep each model's weights)."""
    return analysis.get("hessian_iters") is not None or analysis.get("pacbayes") is not None


def table_paths(results: str, experiment: Experiment) -> list[str]:
    """One Markdown and one CSV table of mean test MSE (rows lr, columns wd) per optimizer x rho x swept values:
    tables/optimizer=<o>_rho=<rho>[_<key>=<value>...].{md,csv}."""
    axes = ["optimizer", "rho", *experiment.sweep]
    combos = itertools.product(*(experiment.levels(a) for a in axes))
    names = ["_".join(f"{a}={fmt_value(a, v)}" for a, v in zip(axes, combo, strict=True)) for combo in combos]
    return [f"{results}/{experiment.name}/tables/{name}.{ext}" for name in names for ext in ("md", "csv")]
