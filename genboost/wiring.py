"""The Snakefile's wiring: every path, wildcard constraints, job params, priorities, resources and code params.

Only the Snakefile imports this module (and tests), and no result depends on it: the train jobs' code
fingerprint does not cover it, so editing a path, a resource or a priority here retrains nothing.
"""

from __future__ import annotations

import csv
import dataclasses
import itertools
import math
import os
import posixpath
import re
from urllib.parse import urlparse

from genboost import fingerprint
from genboost.config import packing
from genboost.config.cell import Cell
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


def raw_path(name: str, entry: dict) -> str:
    """Where the download rule puts a dataset's CSV: resources/<dataset>/<the zip's member, or the url's file,
    or, for an entry without url, the local copy's file>."""
    url = entry.get("url")
    source = urlparse(url).path if url else entry["local_copy"]
    file = entry.get("member") or posixpath.basename(source.replace(os.sep, "/"))
    if not file:
        key = "url" if url else "local_copy"
        raise ConfigError(f"config key datasets.{name}.{key}: {entry[key]!r} names no file; give member")
    return f"resources/{name}/{file}"


def preprocess_input(study: Study, datasets: dict, data_id: str) -> str:
    """The raw CSV of a preprocessed split's dataset."""
    name = study.preprocessings()[data_id]["dataset"]["name"]
    return raw_path(name, datasets[name])


def split_paths(results: str, data_id: str) -> dict[str, str]:
    """A preprocessed split and its manifest (the label's classes), in the folder of its data id
    (`Experiment.data_id`; "{data}" in the preprocess rule's pattern)."""
    folder = f"{results}/data/{data_id}"
    return {"train": f"{folder}/train.csv", "test": f"{folder}/test.csv", "manifest": f"{folder}/manifest.json"}


def data_paths(experiment: Experiment, results: str) -> dict[str, str]:
    """The split an experiment trains and measures on: experiments with equal preprocessing, their dataset's
    entry included, share one folder."""
    return split_paths(results, experiment.data_id)


def log_path(results: str, *names: str) -> str:
    """The log of one job: results/logs/<names, joined by />.log (its experiment, step, and the job's own name)."""
    return f"{results}/logs/{'/'.join(names)}.log"


def cells_path(results: str, experiment: str) -> str:
    """An experiment's cells.csv (one row per model, its measures included), what the summary reads."""
    return f"{results}/{experiment}/cells.csv"


def summary_path(results: str) -> str:
    return f"{results}/summary.md"


def metrics_path(experiment: Experiment, results: str, cell: Cell, name: str = "metrics.json") -> str:
    pattern = run_pattern(experiment.axes, name)
    return pattern.format(results=results, experiment=experiment.name, **experiment.wildcards(cell))


def job_file(experiment: Experiment, results: str) -> str:
    """The pattern of one train job's file (its cells' metrics.json records), named by its pack's values and its
    part (genboost.config.packing): what the tables and figures read, one file a job, so that planning grows with
    the jobs, not the models."""
    levels = "".join(f"{a}={{{a}}}/" for a in packing.free_axes(experiment))
    return f"{results}/{experiment.name}/jobs/train/{levels}part={{part}}.json"


def job_files(experiment: Experiment, results: str, parts: int) -> list[str]:
    """Every train job file of an experiment at `parts` parts per pack."""
    pattern = job_file(experiment, results)
    return [pattern.format(**names) for names in packing.jobs(experiment, parts)]


def job_params(experiment: Experiment, wildcards) -> list[dict]:
    """The cells of one job as plain dicts (`Cell.to_dict`'s, without dataclasses.asdict's deep copies: a study
    of 100,000 models plans in seconds less): a Snakemake param, so a changed cell reruns its job."""
    return cell_dicts(packing.job_cells(experiment, dict(wildcards)))


def cell_dicts(cells: list[Cell]) -> list[dict]:
    """Cells as the train script's `cells` param takes them (`job_params`)."""
    names = [f.name for f in dataclasses.fields(Cell)]
    return [
        {n: list(v) if isinstance(v, tuple) else v for n, v in zip(names, (getattr(c, n) for n in names), strict=True)}
        for c in cells
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


def job_log(experiment: Experiment, results: str) -> str:
    """The log of one train job."""
    levels = [f"{a}={{{a}}}" for a in packing.free_axes(experiment)]
    return log_path(results, experiment.name, "train", *levels, "part={part}")


def model_log(experiment: Experiment, results: str) -> str:
    """The log of the job that trains (or takes from the store) one model asked for by name."""
    return log_path(results, experiment.name, "model", *(f"{a}={{{a}}}" for a in experiment.axes))


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


def job_inputs(lineage: Lineage, experiment: Experiment, cells: list[Cell], parts: dict[str, int]) -> list[str]:
    """The job files of the shorter runs these cells go on from (`parts`: experiment -> parts per pack):
    Snakemake trains those first. Not `ancient`: an edit that reruns both runs would then rerun only the shorter
    one in that invocation (snakemake/snakemake#4166), so a new seed in the shorter runs also reruns the longer runs'
    jobs, which take every model from the store."""
    paths = set()
    for cell in cells:
        found = lineage.shorter_run(experiment, cell)
        if found:
            continued, shorter = found
            names = packing.job_of(continued, shorter, parts[continued.name])
            paths.add(job_file(continued, lineage.study.results).format(**names))
    return sorted(paths)


# The Snakemake priority of the jobs the summary waits for (aggregate, confirm, vs_talk, summary): after the measure
# jobs (`wiring_measure.MEASURE_PRIORITY`), before the figures (0), which nothing waits for, so that an edit's summary
# is written while the figures are still drawn.
REPORT_PRIORITY = 0.25


def job_priority(lineage: Lineage, experiment: Experiment, wildcards) -> int:
    """A train job's Snakemake priority: the longest first; before them a job whose cells a longer run goes
    on from, and after them all the job of that longer run (short now), though before the measure jobs (below 1,
    `wiring_measure.MEASURE_PRIORITY`): the confirmation's selection waits for it
    (genboost.wiring_confirm.select_inputs), the measures for none."""
    cells = packing.job_cells(experiment, dict(wildcards))
    cost = experiment.pack_cost() * len(cells) // experiment.pack_size()
    if any(lineage.continued(experiment, c) for c in cells):
        return 1000 + cost // 1000
    if any(lineage.shorter_run(experiment, c) for c in cells):
        return 1
    return 2 + cost // 1000


def wildcard_constraints() -> dict:
    """Regexes that only match canonical values, so 3e-5 and 0.00003 can never be two cells."""
    number = r"-?(0|[1-9][0-9]*)(\.[0-9]+)?(e[-+][0-9]+)?"
    by_type = {str: "|".join(OPTIMIZERS), float: number, int: "[0-9]+"}  # str: the optimizer axis
    axes = {axis: by_type[kind] for axis, kind in AXIS_TYPES.items()}
    swept = {k: wildcard_constraint(k) for k in SWEEPABLE}
    return {**axes, **swept, "data": "[0-9a-f]{12}", "dataset": "[A-Za-z0-9_-]+", "part": packing.PART_CONSTRAINT}


def one_of(names) -> str:
    """A wildcard constraint matching exactly these names (an experiment's, say), and nothing when there are none."""
    return "|".join(re.escape(n) for n in sorted(names)) or "(?!)"


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
    return {**train_figure_paths(results, experiment), **measures_figure_paths(results, experiment, analysis)}


def train_figure_paths(results: str, experiment: Experiment) -> dict[str, str]:
    """The figures drawn from the train jobs' files alone (the figures job's): a new measure setting keeps them."""
    names = ["heatmap", "lr_curves"]
    names += ["learning_curves"] if experiment.train.get("curve_every") is not None else []
    return _figures(results, experiment, names)


def measures_figure_paths(results: str, experiment: Experiment, analysis: dict) -> dict[str, str]:
    """The measures figure (its own job, which also reads the measure jobs' files), none where nothing is measured."""
    return _figures(results, experiment, ["measures"] if measured(analysis) else [])


def _figures(results: str, experiment: Experiment, names: list[str]) -> dict[str, str]:
    folder = f"{results}/{experiment.name}/figures"
    return {f"{n}_{ext}": f"{folder}/{n}.{ext}" for n in names for ext in ("png", "pdf")}


def vs_talk_paths(results: str, experiment: str) -> dict[str, str]:
    """The comparison of one experiment with the reference table: Markdown, CSV and a figure."""
    stem = f"{results}/{experiment}/vs_talk"
    return {"md": f"{stem}.md", "csv": f"{stem}.csv", "png": f"{stem}.png", "pdf": f"{stem}.pdf"}


def tables(results: str, experiment: Experiment) -> dict[str, dict[str, str]]:
    """One Markdown and one CSV table of mean test MSE (rows lr, columns wd) per optimizer x rho x swept values:
    path -> the values its cells have (axis -> canonical text), given to the aggregate job as data. The file's
    name spells them too, for people: tables/optimizer=<o>_rho=<rho>[_<key>=<value>...].{md,csv}."""
    axes = [*TABLE_AXES, *experiment.sweep]
    out = {}
    for combo in itertools.product(*(experiment.levels(a) for a in axes)):
        levels = {a: fmt_value(a, v) for a, v in zip(axes, combo, strict=True)}
        name = "_".join(f"{a}={text}" for a, text in levels.items())
        out.update({f"{results}/{experiment.name}/tables/{name}.{ext}": levels for ext in ("md", "csv")})
    return out


def table_paths(results: str, experiment: Experiment) -> list[str]:
    return list(tables(results, experiment))


def set_code_params(workflow) -> None:
    """Give every rule that runs a script its `code` param, `fingerprint.rule_code` of that script: a rule names
    its script once, in its `script:` (relative to its rules file, as Snakemake reads it). Called once all rules
    are defined, since a rule's params cannot see its own `script:`. It lives here, not in fingerprint.py, because
    the train and measure scripts import fingerprint.py: editing that module reruns all their jobs."""
    codes = {}  # script -> its code: several rules run one script (one train rule per experiment)
    for rule in workflow.rules:
        if rule.script:
            path = os.path.join(rule.basedir.get_path_or_uri(secret_free=True), rule.script)
            script = os.path.relpath(path, workflow.basedir)
            if script not in codes:
                codes[script] = fingerprint.rule_code(workflow, script)
            rule.set_params(code=codes[script])
