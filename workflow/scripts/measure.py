"""Snakemake adapter: the measures of some train jobs' models, from their stored weights, into each model's
measures.json and the job's file."""

from genboost import fingerprint
from genboost.config.study import Study
from genboost.files import logging_to
from genboost.measures import job

with logging_to(snakemake.log):
    fingerprint.check_running_code(snakemake.params.code, __file__)  # the code the Snakefile planned with
    job.run_measure_job(
        job.MeasureJob(
            experiment=snakemake.params.experiment,
            metrics=list(snakemake.params.metrics),  # named in errors; the records are read from train_jobs
            outputs=list(snakemake.params.measures),
            results=Study.from_config(snakemake.config).results,
            train_csv=snakemake.input.train,
            test_csv=snakemake.input.test,
            analysis=snakemake.params.analysis,
            job_file=snakemake.output.job,
            train_jobs=list(snakemake.input.jobs),
        )
    )
