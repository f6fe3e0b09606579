"""The Snakefile's wiring: paths, wildcard constraints, job params, priorities and resources.

Only the Snakefile imports this module (and tests), and no result depends on it: the train jobs' code
fingerprint does not cover it, so editing a path, a resource or a priority here retrains nothing.
"""

from __future__ import annotations

import csv
import dataclasses
import itertools
import math
import posixpath
from urllib.parse import urlparse

from genboost.config import packing
from genboost.config.cell import AXES, Cell
from genboost.config.optimizers import NAMES as OPTIMIZERS
from genboost.config.study import AXIS_TYPES, TABLE_AXES, Experiment, Study, fmt_value
from genboost.config.sweep import SWEEPABLE, wildcard_constraint
from genboost.errors import ConfigError
from genboost.measures.registry import measured
from genboost.train.resume import Lineage


def run_pattern(axes, name: str = "metrics.json") -> str:
    """The path of a cell's file `name` (metrics.json, measures.json), one `axis={axis}` level per axis, in the
    experiment's axis order."""
    levels = "/".join(f"{a}={{{a}}}" for a in axes)
    return f"{{results}}/{{experiment}}/runs/{levels}/{name}"


# The layout of an experiment that sweeps nothing (unchanged since before sweeps: its results stay valid).
RUN_PATTERN = run_pattern(AXES)


def raw_path(name: str, entry: dict) -> str:
    """Where the download rule puts a dataset's CSV: resources/<dataset>/<the zip's member, or the url's file>."""
    file = entry.get("member") or posixpath.basename(urlparse(entry["url"]).path)
    if not file:
        raise ConfigError(f"config key datasets.{name}.url: {entry['url']!r} names no file; give member")
    return f"resources/{name}/{file}"


def preprocess_input(study: Study, datasets: dict, data_id: str) -> str:
    """The raw CSV of a preprocessed split's dataset."""
    name = study.preprocessings()[data_id]["dataset"]["name"]
    return raw_path(name, datasets[name])


def data_paths(experiment: Experiment, results: str) -> dict[str, str]:
    """Its preprocessed split and its manifest (the label's classes): experiments with equal preprocessing,
    their dataset's entry included, share one folder."""
    folder = f"{results}/data/{experiment.data_id}"
    return {"train": f"{folder}/train.csv", "test": f"{folder}/test.csv", "manifest": f"{folder}/manifest.json"}


def metrics_path(experiment: Experiment, results: str, cell: Cell, name: str = "metrics.json") -> str:
    pattern = run_pattern(experiment.axes, name)
    return pattern.format(results=results, experiment=experiment.name, **experiment.wildcards(cell))


def measures_path(experiment: Experiment, results: str, cell: Cell) -> str:
    """A cell's measures.json, beside its metrics.json (written by the measure job of its train job)."""
    return metrics_path(experiment, results, cell, "measures.json")


def all_metrics(study: Study) -> list[str]:
    return [metrics_path(e, study.results, c) for e in study.experiments for c in e.cells()]


def job_file(experiment: Experiment, results: str, step: str = "train") -> str:
    """The pattern of one job's file (step train: its cells' metrics.json records; measure: their measures), named
    by its pack's values and its part (genboost.config.packing): what the tables and figures read, one file a
    job, so that planning grows with the jobs, not the models."""
    levels = "".join(f"{a}={{{a}}}/" for a in packing.free_axes(experiment))
    return f"{results}/{experiment.name}/jobs/{step}/{levels}part={{part}}.json"


def job_files(experiment: Experiment, results: str, parts: int, step: str = "train") -> list[str]:
    """Every job file of an experiment at `parts` parts per pack."""
    pattern = job_file(experiment, results, step)
    return [pattern.format(**names) for names in packing.jobs(experiment, parts)]


def analysis_inputs(experiment: Experiment, results: str, parts: int, analysis: dict) -> dict[str, list[str]]:
    """What the tables and figures of an experiment read: its train jobs' files, and its measure jobs' where the
    analysis measures anything."""
    measured_jobs = job_files(experiment, results, parts, "measure") if measured(analysis) else []
    return {"jobs": job_files(experiment, results, parts), "measured": measured_jobs}


def job_params(experiment: Experiment, wildcards) -> list[dict]:
    """The cells of one job as plain dicts (`Cell.to_dict`'s, without dataclasses.asdict's deep copies: a study
    of 100,000 models plans in seconds less): a Snakemake param, so a changed cell reruns its job."""
    names = [f.name for f in dataclasses.fields(Cell)]
    return [
        {n: list(v) if isinstance(v, tuple) else v for n, v in zip(names, (getattr(c, n) for n in names), strict=True)}
        for c in packing.job_cells(experiment, dict(wildcards))
    ]


def job_metrics(experiment: Experiment, results: str, wildcards, name: str = "metrics.json") -> list[str]:
    """Each cell's metrics.json (or measures.json) of one job, in the order of its cells: the files it writes
    besides its job file, for users and the measure job."""
    return [metrics_path(experiment, results, c, name) for c in packing.job_cells(experiment, dict(wildcards))]


def model_output(experiment: Experiment, results: str) -> str:
    """The pattern of any one model's metrics.json, for the rule that makes one model asked for by name."""
    free = {a: f"{{{a}}}" for a in experiment.axes}
    return run_pattern(experiment.axes).format(results=results, experiment=experiment.name, **free)


def model_cell(experiment: Experiment, wildcards) -> Cell:
    """The one cell that a model's metrics.json path names (the model rule: one model asked for by name)."""
    return packing.cell_at(experiment, {a: wildcards[a] for a in experiment.axes})


def job_log(experiment: Experiment, results: str, step: str = "train") -> str:
    """The log of one train job (or, step "measure", of its measure job)."""
    levels = "".join(f"{a}={{{a}}}/" for a in packing.free_axes(experiment))
    return f"{results}/logs/{experiment.name}/{step}/{levels}part={{part}}.log"


def model_log(experiment: Experiment, results: str) -> str:
    """The log of the job that trains (or takes from the store) one model asked for by name."""
    levels = "/".join(f"{a}={{{a}}}" for a in experiment.axes)
    return f"{results}/logs/{experiment.name}/model/{levels}.log"


def job_threads(experiment: Experiment) -> int:
    """Torch threads of one train job (`train.threads`); Snakemake caps it at --cores."""
    return experiment.train["threads"]


def job_resources(experiment: Experiment) -> dict:
    """Slurm-sized resources: a generous runtime from the job's model-epochs, GPU only when training on CUDA."""
    minutes = 10 + math.ceil(experiment.pack_cost() * 0.03 / 60)  # ~10x the measured CPU cost
    mem_mb = 1000 + 4 * experiment.pack_size()
    resources = {  # a retry (after a time-out or running out of memory) gets more of both
        "runtime": lambda wildcards, attempt: minutes * attempt,
        "mem_mb": lambda wildcards, attempt: mem_mb * attempt,
    }
    if experiment.device == "cuda":
        resources["gpu"] = 1
    return resources


def measure_resources(experiment: Experiment) -> dict:
    """A measure job's resources: a few CPU seconds per model here, so a generous minute per 10 models."""
    return {"runtime": 10 + math.ceil(experiment.pack_size() / 10), "mem_mb": 1000 + 4 * experiment.pack_size()}


def job_inputs(lineage: Lineage, experiment: Experiment, cells: list[Cell], parts: dict[str, int]) -> list[str]:
    """The job files of the shorter runs these cells go on from (`parts`: experiment -> parts per pack):
    Snakemake trains those first."""
    paths = set()
    for cell in cells:
        found = lineage.shorter_run(experiment, cell)
        if found:
            continued, shorter = found
            names = packing.job_of(continued, shorter, parts[continued.name])
            paths.add(job_file(continued, lineage.study.results).format(**names))
    return sorted(paths)


def job_priority(lineage: Lineage, experiment: Experiment, wildcards) -> int:
    """A train job's Snakemake priority: the longest first; before them a job whose cells a longer run goes
    on from, and after them all the job of that longer run (short now, it runs while the other cores make tables)."""
    cells = packing.job_cells(experiment, dict(wildcards))
    cost = experiment.pack_cost() * len(cells) // experiment.pack_size()
    if any(lineage.continued(experiment, c) for c in cells):
        return 1000 + cost // 1000
    if any(lineage.shorter_run(experiment, c) for c in cells):
        return 0
    return cost // 1000


def wildcard_constraints() -> dict:
    """Regexes that only match canonical values, so 3e-5 and 0.00003 can never be two cells."""
    number = r"-?(0|[1-9][0-9]*)(\.[0-9]+)?(e[-+][0-9]+)?"
    by_type = {str: "|".join(OPTIMIZERS), float: number, int: "[0-9]+"}  # str: the optimizer axis
    axes = {axis: by_type[kind] for axis, kind in AXIS_TYPES.items()}
    swept = {k: wildcard_constraint(k) for k in SWEEPABLE}
    return {**axes, **swept, "data": "[0-9a-f]{12}", "dataset": "[A-Za-z0-9_-]+", "part": packing.PART_CONSTRAINT}


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


def figure_paths(results: str, experiment: Experiment, analysis: dict) -> dict[str, str]:
    """Output paths of one experiment's figures: name -> path (PNG and PDF of each); learning curves where its
    train jobs record them (train.curve_every) and the measures against test MSE where the analysis measures."""
    names = ["heatmap", "lr_curves"]
    names += ["learning_curves"] if experiment.train.get("curve_every") is not None else []
    names += ["measures"] if measured(analysis) else []
    folder = f"{results}/{experiment.name}/figures"
    return {f"{n}_{ext}": f"{folder}/{n}.{ext}" for n in names for ext in ("png", "pdf")}


def vs_talk_paths(results: str, experiment: str) -> dict[str, str]:
    """The comparison of one experiment with the reference table: Markdown, CSV and a figure."""
    stem = f"{results}/{experiment}/vs_talk"
    return {"md": f"{stem}.md", "csv": f"{stem}.csv", "png": f"{stem}.png", "pdf": f"{stem}.pdf"}


def table_paths(results: str, experiment: Experiment) -> list[str]:
    """One Markdown and one CSV table of mean test MSE (rows lr, columns wd) per optimizer x rho x swept values:
    tables/optimizer=<o>_rho=<rho>[_<key>=<value>...].{md,csv}."""
    axes = [*TABLE_AXES, *experiment.sweep]
    combos = itertools.product(*(experiment.levels(a) for a in axes))
    names = ["_".join(f"{a}={fmt_value(a, v)}" for a, v in zip(axes, combo, strict=True)) for combo in combos]
    return [f"{results}/{experiment.name}/tables/{name}.{ext}" for name in names for ext in ("md", "csv")]
