"""The Snakefile's wiring of the comparison with the talk, beside genboost.wiring's: what a vs_talk job reads.
As genboost.wiring, only the Snakefile imports it, and no result depends on it."""

from __future__ import annotations

from genboost.config.study import Experiment, Study
from genboost.wiring import data_paths, job_files


def _compared_grids(study: Study, compared: dict, experiment: str) -> dict[str, Experiment]:
    """The experiments one comparison with the talk reads, by the prefix of its inputs: "own" and, where it has
    one, its "partner" (`compared`: experiment -> its partner or None, `Study.compared`)."""
    partner = compared[experiment]
    return {"own": study.experiment(experiment), **({"partner": partner} if partner else {})}


def vs_talk_inputs(study: Study, parts: dict[str, int], compared: dict, reference: str, experiment: str) -> dict:
    """What one experiment's comparison with the talk reads: the reference table and, of it and its partner
    (`_compared_grids`), the train jobs' files (`parts`: experiment -> parts per pack) and the test split (for
    test_mse_rel). Not cells.csv, which waits for the measure jobs: a new measure setting reruns no comparison."""
    grids = _compared_grids(study, compared, experiment).items()
    jobs = {f"{k}_jobs": job_files(e, study.results, parts[e.name]) for k, e in grids}
    return {"reference": reference, **jobs, **{f"{k}_test": data_paths(e, study.results)["test"] for k, e in grids}}


def vs_talk_grids(study: Study, compared: dict, experiment: str) -> dict[str, dict]:
    """Each experiment `vs_talk_inputs` names, by the same prefix: its name and swept keys (cells.csv's columns of
    them), as `genboost.compare.report.grid_cells` takes them."""
    grids = _compared_grids(study, compared, experiment).items()
    return {k: {"experiment": e.name, "sweep": list(e.sweep)} for k, e in grids}
