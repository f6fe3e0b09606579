"""The Snakefile's wiring of the measure jobs, beside genboost.wiring's: an experiment's models are measured in one
measure job a core (`measure_parts`), each measuring a run of consecutive train jobs and writing one file (their
models' measures, in their order), which the tables and figures read beside the train jobs' files. As
genboost.wiring, only the Snakefile imports it, and no result depends on it."""

from __future__ import annotations

import math

from genboost.config import packing
from genboost.config.study import Experiment
from genboost.measures.registry import measured
from genboost.wiring import job_file, job_files, job_metrics, log_path

# A measure job's Snakemake priority: after every train job (priorities 1 and up: the confirmation's selection waits
# for them, the measures for none), before the tables and figures (0), so that a core that frees takes the measure
# job that aggregate, vs_talk and summary wait for rather than a figure that nothing waits for.
MEASURE_PRIORITY = 0.5


def measure_parts(experiment: Experiment, parts: int, cores: int | None) -> int:
    """How many measure jobs measure an experiment's train jobs (`parts` per pack), each the models of a run of
    consecutive train jobs: one a core, since each starts a process that imports torch and an edit that remeasures
    every model should start no more than fill the cores; one a train job where Snakemake knows no core count (a
    cluster). Here, not in config/packing.py, which the train jobs' code (their store keys) includes."""
    train_jobs = train_job_count(experiment, parts)
    return min(train_jobs, cores) if cores else train_jobs


def train_job_count(experiment: Experiment, parts: int) -> int:
    """How many train jobs an experiment has at `parts` parts per pack (`packing.jobs` without listing them)."""
    return packing.pack_count(experiment) * parts


def measure_file(experiment: Experiment, results: str) -> str:
    """The pattern of one measure job's file: the measures of the models of its part of the experiment's train
    jobs (`measured_jobs`), in their order, as the train jobs' files list them."""
    return f"{results}/{experiment.name}/jobs/measure/part={{part}}.json"


def measure_files(experiment: Experiment, results: str, count: int) -> list[str]:
    """Every measure job file of an experiment measured in `count` jobs (`measure_parts`)."""
    return [measure_file(experiment, results).format(part=p) for p in packing.part_names(count)]


def measured_jobs(experiment: Experiment, parts: int, wildcards) -> list[dict[str, str]]:
    """The names of the train jobs one measure job measures: its part of the experiment's train jobs, in order."""
    names = packing.jobs(experiment, parts)
    start, end = packing.bounds(len(names), *packing.parse_part(wildcards["part"]))
    return names[start:end]


def measured_job_files(experiment: Experiment, results: str, parts: int, wildcards) -> list[str]:
    """The files of the train jobs one measure job measures (`measured_jobs`)."""
    return [job_file(experiment, results).format(**names) for names in measured_jobs(experiment, parts, wildcards)]


def measured_metrics(experiment: Experiment, results: str, parts: int, wildcards, name: str = "metrics.json"):
    """Each model's metrics.json (or measures.json) of the train jobs one measure job measures, in their order."""
    return [
        p
        for names in measured_jobs(experiment, parts, wildcards)
        for p in job_metrics(experiment, results, names, name)
    ]


def analysis_inputs(experiment: Experiment, results: str, parts: int, analysis: dict, cores: int | None):
    """What the tables and figures of an experiment read: its train jobs' files (`parts` per pack), and its measure
    jobs' (`measure_parts` at `cores`) where the analysis measures anything."""
    count = measure_parts(experiment, parts, cores)
    measured_files = measure_files(experiment, results, count) if measured(analysis) else []
    return {"jobs": job_files(experiment, results, parts), "measured": measured_files}


def measure_log(experiment: Experiment, results: str) -> str:
    """The log of one measure job."""
    return log_path(results, experiment.name, "measure", "part={part}")


def measure_resources(experiment: Experiment, parts: int, cores: int | None) -> dict:
    """A measure job's resources: a few CPU seconds per model here, so a generous minute per 10 models."""
    train_jobs = train_job_count(experiment, parts)
    models = math.ceil(train_jobs / measure_parts(experiment, parts, cores)) * experiment.pack_size() // parts
    return {"runtime": 10 + math.ceil(models / 10), "mem_mb": 1000 + 4 * models}
