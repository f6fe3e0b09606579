"""Snakemake adapter: train (or reuse) the cells of one job; write their metrics.json files and its job file."""

from genboost import fingerprint
from genboost.config.study import Study
from genboost.files import logging_to
from genboost.train import jobs
from genboost.train.model import Cell
from genboost.train.resume import Lineage

with logging_to(snakemake.log):
    # Snakemake sets __file__ to this script's own path. The store files results under the code that runs
    # (jobs.result_code), which must be the code the Snakefile planned with: else stale code under a new key.
    fingerprint.check_running_code(snakemake.params.code, __file__)
    study = Study.from_config(snakemake.config)
    experiment = study.experiment(snakemake.params.experiment)
    cells = [Cell.from_dict(c) for c in snakemake.params.cells]
    shorter_runs, continued = Lineage(study).for_job(experiment, cells)
    job = jobs.TrainJob(
        experiment=experiment,
        cells=cells,
        outputs=list(snakemake.params.metrics),
        results=study.results,
        train_csv=snakemake.input.train,
        test_csv=snakemake.input.test,
        threads=snakemake.threads,
        shorter_runs=shorter_runs,
        continued=continued,
        job_file=snakemake.output.get("job"),  # none for one model asked for by name
    )
    jobs.run_train_job(job)
