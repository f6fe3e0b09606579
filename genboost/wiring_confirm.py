"""The Snakefile's wiring of the confirmation stage (workflow/rules/confirm.smk), beside genboost.wiring's: per
confirmed experiment (`Study.confirmed`) the checkpoint writes the configurations its claims select, and each
trains on the fresh seeds as one ordinary train job. Its paths, job params and the input function that reads
the checkpoint. As genboost.wiring, only the Snakefile imports it, and no result depends on it."""

from __future__ import annotations

import csv

from genboost.config.cell import Cell
from genboost.config.study import Experiment, Study
from genboost.wiring import cell_dicts, data_paths, job_files, log_path, run_pattern


def confirm_folder(results: str, experiment: str) -> str:
    return f"{results}/{experiment}/confirm"


def selected_path(results: str, experiment: str) -> str:
    """The checkpoint's output: per claim part, its two configurations (genboost.compare.selection)."""
    return f"{confirm_folder(results, experiment)}/selected.csv"


def fresh_path(results: str, experiment: str) -> str:
    """One row per fresh model of a confirmed experiment's selected configurations, as cells.csv has them."""
    return f"{confirm_folder(results, experiment)}/fresh.csv"


def _grids(confirmed: dict[str, str | None], experiment: str) -> dict[str, str]:
    """The experiments a selection reads, by the name of its input: the confirmed one and its second chance."""
    second = confirmed[experiment]
    return {"jobs": experiment, **({"partner_jobs": second} if second else {})}


def select_inputs(study: Study, parts: dict[str, int], confirmed: dict[str, str | None], experiment: str) -> dict:
    """What the selection of a confirmed experiment reads: its train jobs' files and its second chance's, if any
    (`parts`: experiment -> parts per pack). Not cells.csv: that waits for the measures, which the selection
    does not read, so the fresh models train while the grid is measured and aggregated."""
    grids = _grids(confirmed, experiment).items()
    return {k: job_files(study.experiment(e), study.results, parts[e]) for k, e in grids}


def select_grids(study: Study, confirmed: dict[str, str | None], experiment: str) -> dict[str, dict]:
    """Each experiment `select_inputs` names, by the same keys: its name and swept keys (cells.csv's columns of
    them), as `selection.grid_cells` takes them."""
    grids = _grids(confirmed, experiment).items()
    return {k: {"experiment": e, "sweep": list(study.experiment(e).sweep)} for k, e in grids}


def confirm_sources(study: Study, confirmed: dict[str, str | None]) -> list[Experiment]:
    """The experiments a selection may pick configurations from: the confirmed ones and their second chances."""
    names = {*confirmed, *(s for s in confirmed.values() if s)}
    return [e for e in study.experiments if e.name in names]


def _config_levels(experiment: Experiment) -> list[str]:
    return [f"{a}={{{a}}}" for a in experiment.axes[:-1]]


def fresh_job(experiment: Experiment, results: str) -> str:
    """The pattern of the job file of one selected configuration's fresh seeds, named by the configuration."""
    return f"{confirm_folder(results, experiment.name)}/jobs/{'/'.join(_config_levels(experiment))}.json"


def fresh_job_log(experiment: Experiment, results: str) -> str:
    return log_path(results, experiment.name, "confirm", *_config_levels(experiment))


def fresh_cells(study: Study, experiment: Experiment, wildcards) -> list[Cell]:
    """The cells of one fresh job: its configuration (the job's name) at every fresh seed."""
    return experiment.fresh_cells({a: wildcards[a] for a in experiment.axes[:-1]}, study.fresh_seeds())


def fresh_params(study: Study, experiment: Experiment, wildcards) -> list[dict]:
    """A fresh job's cells as the train script takes them: a param, so more seeds rerun it (the store keeps the
    models of the seeds it had)."""
    return cell_dicts(fresh_cells(study, experiment, wildcards))


def fresh_metrics(study: Study, experiment: Experiment, results: str, wildcards) -> list[str]:
    """Each fresh model's metrics.json, under the experiment's confirm folder, in the order of its cells."""
    pattern = run_pattern(experiment.axes).replace("{results}/{experiment}", confirm_folder(results, experiment.name))
    return [pattern.format(**experiment.wildcards(c)) for c in fresh_cells(study, experiment, wildcards)]


def fresh_priority(study: Study, experiment: Experiment, wildcards) -> int:
    """A fresh job's Snakemake priority: its gradient evaluations, in thousands of model-epochs (a SAM epoch
    counts twice), as the grid's train jobs have theirs. Above the measure jobs', so the fresh models start as
    soon as they are selected, the longest first, and the grid's measures and figures fill the other core."""
    cells = fresh_cells(study, experiment, wildcards)
    return sum(c.epochs * (2 if c.sam else 1) for c in cells) // 1000


def fresh_jobs(checkpoints, study: Study, results: str, experiment: str) -> list[str]:
    """The fresh jobs of a confirmed experiment: one per distinct configuration its checkpoint selected (read
    once the checkpoint has run; Snakemake plans them then)."""
    path = checkpoints.select.get(experiment=experiment).output[0]
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    jobs = {fresh_job(study.experiment(r["experiment"]), results).format(**r) for r in rows}
    return sorted(jobs)


def confirm_inputs(study: Study, confirmed: dict[str, str | None], experiment: str) -> dict[str, str]:
    """What a report needs of the confirmation of `experiment`'s setup (its own, or that of the run it continues;
    nothing where that is not confirmed): the fresh models and the test split whose label variance scales the
    margin."""
    experiment = study.experiment(experiment).continues or experiment
    if experiment not in confirmed:
        return {}
    data = data_paths(study.experiment(experiment), study.results)["test"]
    return {"fresh": fresh_path(study.results, experiment), "test_data": data}
