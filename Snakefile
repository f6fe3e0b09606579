# genboost: download -> preprocess -> train (one job per cell or per pack of cells) -> measure (the same jobs'
# models, from their stored weights) -> tables -> summary.
# This file only wires rules; all logic lives in the genboost package.
import os
from functools import partial

from snakemake.utils import min_version

from genboost import wiring, wiring_compare, wiring_confirm, wiring_measure
from genboost.config import packing, settings
from genboost.config.study import Study
from genboost.measures.registry import measured
from genboost.train.resume import Lineage

min_version("9.0")


configfile: "config.yaml"


# YAML scalars read where the schema takes no string, then checked against genboost/config/schema.yaml
# (defaults filled in)
config.update(settings.checked(config))
STUDY = Study.from_config(config)
LINEAGE = Lineage(STUDY)
R = STUDY.results
# Parts per pack, so that the jobs fill the cores (genboost/config/packing.py). A job's own Snakemake
# process (on a cluster node, or a subprocess) plans with its parent's core count, read from the environment, so
# that it names the same jobs.
PLAN_CORES = int(
    os.environ.setdefault(
        "GENBOOST_PLAN_CORES", str(workflow.resource_settings.cores or 0)
    )
)
PARTS = {e.name: packing.parts(e, PLAN_CORES) for e in STUDY.experiments}
DATASETS = config["datasets"]
REFERENCE = config["reference"]
# Experiments compared with the reference table, each with its partner: the run it continues, or its second chance
COMPARED = STUDY.compared(wiring.reference_experiments(REFERENCE))
# Experiments whose claims are confirmed on fresh seeds (config key confirm), each with its second chance
CONFIRMED = STUDY.confirmed(COMPARED)


report: "workflow/report/workflow.rst"


wildcard_constraints:
    **wiring.wildcard_constraints(),


# Every rule but those that train or measure models says `localrule: True`: its job is seconds of pandas or
# matplotlib, which on Slurm would wait in the queue and for the plugin's status checks, one wave each.
rule all:
    input:
        wiring.summary_path(R),
        [wiring.table_paths(R, e) for e in STUDY.experiments],
        [wiring.figure_paths(R, e, STUDY.analysis).values() for e in STUDY.experiments],
        [wiring.vs_talk_paths(R, name).values() for name in COMPARED],
    localrule: True


include: "workflow/rules/data.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/analysis.smk"
include: "workflow/rules/confirm.smk"
include: "workflow/rules/compare.smk"


# Each rule names its script once, in its `script:`; this gives it the `code` param, that script's fingerprint.
wiring.set_code_params(workflow)
