"""The study's grid: config validation beyond the schema, cells, job packing and paths.

Everything the Snakefile needs to wire the rules lives here, so that it can be tested without Snakemake.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

from genboost.cell import Cell

AXES = ("optimizer", "lr", "wd", "rho", "seed")
GRID_KEYS = {"optimizer": "optimizers", "lr": "lrs", "wd": "wds", "rho": "rhos", "seed": "seeds"}
# `train` keys that an experiment may override; the rest of an experiment's keys are its grid.
TRAIN_KEYS = (
    "batch_size",
    "epochs",
    "sam_epochs",
    "t_max",
    "momentum",
    "adam_betas",
    "adam_eps",
    "wd_mode",
    "sam_adaptive",
    "device",
    "threads",
    "dtype",
    "flush_denormal",
    "shuffle_labels",
    "pack",
)
TRAIN_DEFAULTS = {
    "adam_betas": [0.9, 0.999],
    "adam_eps": 1e-8,
    "wd_mode": "coupled",
    "sam_adaptive": False,
    "dtype": "float32",
    "flush_denormal": True,
    "pack": [],
    "threads": 1,
    "shuffle_labels": False,
}
ANALYSIS_DEFAULTS = {"curve_every": None, "sharpness_radii": [], "hessian_iters": None}
RUN_PATTERN = "{results}/{experiment}/runs/optimizer={optimizer}/lr={lr}/wd={wd}/rho={rho}/seed={seed}/metrics.json"


class ConfigError(ValueError):
    """An invalid config value; the message names the key and the value."""


def fmt_number(x: float | int) -> str:
    """Canonical text of a grid value, used in paths: 3e-05 and 0.00003 give the same string."""
    x = float(x)
    if x == int(x) and abs(x) < 1e15:
        return str(int(x))
    return repr(x)


def parse_number(value, key: str) -> float:
    """A float from a config value; YAML 1.1 reads `3e-5` as a string, so numeric strings are accepted."""
    if isinstance(value, bool):
        raise ConfigError(f"config key {key}: expected a number, got {value!r}")
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"config key {key}: expected a number, got {value!r}") from None


@dataclass(frozen=True)
class Experiment:
    name: str
    grid: dict  # axis -> tuple of canonical values (str for optimizer, float for lr/wd/rho, int for seed)
    train: dict  # resolved train settings
    hidden: tuple[int, ...]

    @property
    def pack(self) -> tuple[str, ...]:
        return tuple(a for a in AXES if a in self.train["pack"])

    @property
    def device(self) -> str:
        return self.train["device"]

    def cell(self, optimizer: str, lr: float, wd: float, rho: float, seed: int) -> Cell:
        t = self.train
        return Cell(
            optimizer=optimizer,
            lr=lr,
            wd=wd,
            rho=rho,
            seed=seed,
            epochs=t["sam_epochs"] if rho > 0 else t["epochs"],
            batch_size=t["batch_size"],
            t_max=t["t_max"],
            momentum=t["momentum"],
            adam_betas=tuple(t["adam_betas"]),
            adam_eps=t["adam_eps"],
            wd_mode=t["wd_mode"],
            sam_adaptive=t["sam_adaptive"],
            hidden=self.hidden,
            dtype=t["dtype"],
            flush_denormal=t["flush_denormal"],
            shuffle_labels=t["shuffle_labels"],
        )

    def cells(self) -> list[Cell]:
        return [self.cell(*values) for values in itertools.product(*(self.grid[a] for a in AXES))]

    def metrics_path(self, results: str, cell: Cell) -> str:
        return RUN_PATTERN.format(results=results, experiment=self.name, **wildcards_of(cell))

    def job_outputs(self, results: str) -> list[str]:
        """The output patterns of one train job: packed axes filled in, the others left as {wildcards}."""
        fixed = {a: "{" + a + "}" for a in AXES if a not in self.pack}
        packed = [[(a, fmt_value(a, v)) for v in self.grid[a]] for a in self.pack]
        return [
            RUN_PATTERN.format(results=results, experiment=self.name, **fixed, **dict(combo))
            for combo in itertools.product(*packed)
        ]

    def job_cells(self, wildcards: dict) -> list[Cell]:
        """The cells one train job trains, from its wildcards (the non-packed axes)."""
        choices = []
        for axis in AXES:
            if axis in self.pack:
                choices.append(self.grid[axis])
            else:
                choices.append((self._lookup(axis, wildcards[axis]),))
        return [self.cell(*values) for values in itertools.product(*choices)]

    def job_params(self, wildcards) -> list[dict]:
        """The cells of one job as plain dicts: a Snakemake param, so a changed cell reruns its job."""
        return [c.to_dict() for c in self.job_cells(dict(wildcards))]

    def job_size(self) -> int:
        size = 1
        for axis in self.pack:
            size *= len(self.grid[axis])
        return size

    def job_log(self, results: str) -> str:
        free = [a for a in AXES if a not in self.pack]
        name = "/".join(f"{a}={{{a}}}" for a in free) or "all"
        return f"{results}/logs/{self.name}/train/{name}.log"

    def job_threads(self) -> int:
        """Torch threads of one train job (`train.threads`); Snakemake caps it at --cores."""
        return self.train["threads"]

    def job_cost(self) -> int:
        """Gradient evaluations of one job, in units of one model-epoch: the scheduler starts the longest first."""
        epochs = max(self.train["epochs"], 2 * self.train["sam_epochs"] if any(r > 0 for r in self.grid["rho"]) else 0)
        return self.job_size() * epochs

    def job_resources(self) -> dict:
        """Slurm-sized resources: a generous runtime from the job's model-epochs, GPU only when training on CUDA."""
        minutes = 10 + math.ceil(self.job_cost() * 0.03 / 60)  # ~10x the measured CPU cost
        resources = {
            "runtime": lambda wildcards, attempt: minutes * attempt,  # a retry after a time-out gets longer
            "mem_mb": 1000 + 4 * self.job_size(),
        }
        if self.device == "cuda":
            resources["gpu"] = 1
        return resources

    def _lookup(self, axis: str, text: str):
        for value in self.grid[axis]:
            if fmt_value(axis, value) == text:
                return value
        raise ConfigError(f"experiment {self.name}: {axis}={text!r} is not in the grid {self.grid[axis]}")


def fmt_value(axis: str, value) -> str:
    return value if axis == "optimizer" else fmt_number(value)


def wildcards_of(cell: Cell) -> dict:
    return {a: fmt_value(a, getattr(cell, a)) for a in AXES}


@dataclass(frozen=True)
class Study:
    results: str
    experiments: tuple[Experiment, ...]
    analysis: dict

    @classmethod
    def from_config(cls, config: dict) -> Study:
        train = {**TRAIN_DEFAULTS, **config["train"]}
        hidden = tuple(config["model"]["hidden"])
        experiments = tuple(
            _experiment(name, spec, train, hidden)
            for name, spec in config["experiments"].items()
            if spec.get("enabled", True)
        )
        if not experiments:
            raise ConfigError("config key experiments: every experiment has enabled: false; nothing to run")
        analysis = {**ANALYSIS_DEFAULTS, **(config.get("analysis") or {})}
        analysis["sharpness_radii"] = [
            parse_number(r, "analysis.sharpness_radii") for r in analysis["sharpness_radii"] or []
        ]
        results = str(config.get("results", "results")).rstrip("/")
        return cls(results=results, experiments=experiments, analysis=analysis)

    def all_metrics(self) -> list[str]:
        return [e.metrics_path(self.results, c) for e in self.experiments for c in e.cells()]

    def experiment(self, name: str) -> Experiment:
        for e in self.experiments:
            if e.name == name:
                return e
        raise ConfigError(f"no experiment named {name!r} in config key experiments")


def _experiment(name: str, spec: dict, base_train: dict, hidden: tuple[int, ...]) -> Experiment:
    unknown = set(spec) - set(GRID_KEYS.values()) - set(TRAIN_KEYS) - {"enabled"}
    if unknown:
        raise ConfigError(f"config key experiments.{name}: unknown key(s) {sorted(unknown)}")
    train = {**base_train, **{k: v for k, v in spec.items() if k in TRAIN_KEYS}}
    prefix = f"experiments.{name}"
    for key in ("momentum", "adam_eps"):
        train[key] = parse_number(train[key], f"{prefix}.{key}")
    train["adam_betas"] = [parse_number(b, f"{prefix}.adam_betas") for b in train["adam_betas"]]
    unknown_axes = set(train["pack"]) - set(AXES)
    if unknown_axes:
        raise ConfigError(f"config key {prefix}.pack: unknown axis {sorted(unknown_axes)}; axes are {list(AXES)}")
    grid = {}
    for axis, key in GRID_KEYS.items():
        values = spec.get(key)
        if not values:
            raise ConfigError(f"config key {prefix}.{key}: needs at least one value, got {values!r}")
        grid[axis] = _axis_values(axis, values, f"{prefix}.{key}")
    return Experiment(name=name, grid=grid, train=train, hidden=hidden)


def _axis_values(axis: str, values: list, key: str) -> tuple:
    if axis == "optimizer":
        parsed = [str(v).lower() for v in values]
        bad = [v for v in parsed if v not in ("sgd", "adam")]
        if bad:
            raise ConfigError(f"config key {key}: unknown optimizer {bad[0]!r}; choose sgd or adam")
    elif axis == "seed":
        parsed = [int(v) for v in values]
    else:
        parsed = [parse_number(v, key) for v in values]
        lower = 0.0 if axis != "lr" else None
        for v in parsed:
            if (
                v != v
                or v in (float("inf"), float("-inf"))
                or (lower is not None and v < lower)
                or (axis == "lr" and v <= 0)
            ):
                raise ConfigError(
                    f"config key {key}: {fmt_number(v) if v == v else v} is out of range ({axis} must be "
                    f"{'> 0' if axis == 'lr' else '>= 0'} and finite)"
                )
    texts = [fmt_value(axis, v) for v in parsed]
    dupes = sorted({t for t in texts if texts.count(t) > 1})
    if dupes:
        raise ConfigError(f"config key {key}: duplicate value(s) {dupes}")
    return tuple(parsed)


def wildcard_constraints() -> dict:
    """Regexes that only match canonical values, so 3e-5 and 0.00003 can never be two cells."""
    number = r"-?(0|[1-9][0-9]*)(\.[0-9]+)?(e[-+][0-9]+)?"
    return {"optimizer": "sgd|adam", "lr": number, "wd": number, "rho": number, "seed": "[0-9]+"}


def figure_paths(results: str, experiment: str, curves: bool) -> dict[str, str]:
    """Output paths of one experiment's figures: name -> path (PNG and PDF of each)."""
    names = ["heatmap", "lr_curves"] + (["learning_curves"] if curves else [])
    return {f"{n}_{ext}": f"{results}/{experiment}/figures/{n}.{ext}" for n in names for ext in ("png", "pdf")}


def table_paths(results: str, experiment: Experiment) -> list[str]:
    """One Markdown and one CSV table of mean test MSE (rows lr, columns wd) per optimizer x rho."""
    return [
        f"{results}/{experiment.name}/tables/optimizer={o}_rho={fmt_number(r)}.{ext}"
        for o in experiment.grid["optimizer"]
        for r in experiment.grid["rho"]
        for ext in ("md", "csv")
    ]
