"""`snakemake --profile slurm` on a running Slurm cluster, through the official plugin.

One run of a tiny study on Slurm checks three things: the cells' numbers equal a local `--cores 2` run of the
same study; a `device: cuda` train job is submitted with a GPU request (Slurm's own record says so); and that
job, which cannot find CUDA on a GPU-less machine, is reported as failed while --keep-going finishes the rest.

Runs where a cluster is up (`scontrol ping` says UP; `.ci/slurm-up.sh` brings up a one-node one, as root on
Debian). The tests never install or start anything: elsewhere they skip, saying why, and under CI (which runs
.ci/slurm-up.sh before pytest) they fail.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from workflow_helpers import REPO_ROOT, make_workdir

pytestmark = [pytest.mark.slurm, pytest.mark.slow]

# The test cluster has no slurmdbd: sacct fails and the plugin would wait forever, so status comes from squeue,
# first checked 5 s after submission (default 40 s). `timeout`: hangs are the likely failure. --verbose logs sbatch.
SLURM_RUN = [
    *("timeout", "600", sys.executable, "-m", "snakemake", "--profile", "slurm", "--keep-going", "--verbose"),
    *("--slurm-status-command", "squeue", "--slurm-init-seconds-before-status-checks", "5"),
    *("aggregate_main", "aggregate_gpu"),  # one Slurm wave, the train jobs: preprocess and aggregate are local rules
]


def small_study(config: dict) -> None:
    """Two CPU train jobs (SGD/Adam packs) and one job on `device: cuda`, which must ask Slurm for a GPU. No
    measures: a measure job would add a wave of Slurm jobs, each waiting for the plugin's status checks."""
    config["analysis"] = {"sharpness_radii": [], "hessian_iters": None, "pacbayes": None}
    config["experiments"] = {
        "main": {"optimizers": ["sgd", "adam"], "lrs": [1e-3, 2e-2], "wds": [0, 1e-3], "rhos": [0], "seeds": [0]},
        "gpu": {"optimizers": ["adam"], "lrs": [1e-3], "wds": [0], "rhos": [0], "seeds": [0], "device": "cuda"},
    }


def unavailable(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"Slurm test cannot run under CI: {reason}")
    pytest.skip(f"Slurm test skipped: {reason}")


def daemon_logs() -> str:
    logs = sorted(Path("/var/log/slurm").glob("*.log"))
    return "\n".join(f"===== {p} (end)\n{p.read_text(errors='replace')[-6000:]}" for p in logs)


def cluster_state() -> str | None:
    """None when a Slurm cluster answers `scontrol ping` as UP, else why not."""
    if not shutil.which("scontrol"):
        return "Slurm's tools are not installed (no scontrol on PATH); .ci/slurm-up.sh sets up a one-node cluster"
    try:
        ping = subprocess.run(["scontrol", "ping"], capture_output=True, text=True, timeout=60)
    except subprocess.TimeoutExpired:
        return "`scontrol ping` did not answer within 60 s"
    if "is UP" not in ping.stdout:
        said = (ping.stdout + ping.stderr).strip()
        return f"no Slurm controller is up (`scontrol ping`: {said!r}); .ci/slurm-up.sh starts a one-node cluster"
    return None


@pytest.fixture(scope="module")
def slurm_cluster():
    """A running cluster and the plugin; the tests never install or start either."""
    if importlib.util.find_spec("snakemake_executor_plugin_slurm") is None:
        unavailable("snakemake-executor-plugin-slurm is not installed (pip install -e .[slurm])")
    reason = cluster_state()
    if reason:
        unavailable(reason)


@pytest.fixture(scope="module")
def slurm_run(slurm_cluster, tmp_path_factory, obesity_csv):
    """The small study run on Slurm and, at the same time, locally; returns both workdirs and the Slurm run."""
    local = make_workdir(tmp_path_factory.mktemp("local"), obesity_csv, edit=small_study)
    on_slurm = make_workdir(tmp_path_factory.mktemp("slurm"), obesity_csv, edit=small_study)
    shutil.copytree(REPO_ROOT / "slurm", on_slurm / "slurm")
    # The local run skips the CUDA job (it would fail the same way). It runs alongside the Slurm run, which
    # mostly waits between status checks, at low priority so that the Slurm jobs, which set the pace, keep the CPUs.
    local_log = local / "snakemake.out"
    with local_log.open("w") as out:
        local_proc = subprocess.Popen(
            ["nice", "-n", "19", sys.executable, "-m", "snakemake", "--cores", "2", "aggregate_main"],
            cwd=local,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        proc = subprocess.run(SLURM_RUN, cwd=on_slurm, capture_output=True, text=True, timeout=660)
        local_rc = local_proc.wait(timeout=600)
    assert local_rc == 0, f"local run failed:\n{local_log.read_text()}"
    return local, on_slurm, proc.returncode, proc.stdout + proc.stderr


@pytest.fixture
def explain(slurm_run):
    """The snakemake log and the Slurm daemon logs, which pytest shows when the test fails."""
    print(f"===== snakemake --profile slurm (exit status {slurm_run[2]})\n{slurm_run[3]}\n{daemon_logs()}")


def slurm_jobs(log: str, rule: str) -> dict[str, Path]:
    """Slurm job id -> its Slurm log, for each submission of one rule that the plugin logged."""
    pattern = rf"submitted with SLURM jobid (\d+) \(log: (\S*/rule_{rule}/\S*\.log)\)"
    return {job_id: Path(path) for job_id, path in re.findall(pattern, log)}


def sbatch_calls(log: str, rule: str) -> list[str]:
    """The sbatch command lines, without the --wrap payload, that the plugin logged (--verbose) for one rule."""
    return [call for call in re.findall(r"sbatch call: (sbatch .*?) --wrap=", log) if f"--comment rule_{rule}" in call]


def scontrol(job_id: str) -> dict[str, str]:
    """Slurm's record of a job, which it keeps MinJobAge seconds after the job ends (.ci/slurm-up.sh: an hour)."""
    proc = subprocess.run(["scontrol", "-o", "show", "job", job_id], capture_output=True, text=True)
    assert proc.returncode == 0, f"Slurm has no record of job {job_id} (purged after MinJobAge?): {proc.stderr}"
    return dict(field.split("=", 1) for field in proc.stdout.split() if "=" in field)


def cell_results(workdir: Path, experiment: str) -> dict[str, dict]:
    """Each cell's metrics.json without its wall-clock timings, the only thing allowed to differ between runs."""
    runs = workdir / "results" / experiment / "runs"
    results = {}
    for path in sorted(runs.rglob("metrics.json")):
        record = json.loads(path.read_text())
        results[str(path.parent.relative_to(runs))] = {k: v for k, v in record.items() if not k.endswith("wall_s")}
    return results


def test_cells_match_a_local_run(slurm_run, explain):
    local, on_slurm, _, log = slurm_run
    assert len(slurm_jobs(log, "train_main")) == 2, "the two train_main jobs did not go through Slurm"
    slurm_cells, local_cells = cell_results(on_slurm, "main"), cell_results(local, "main")
    assert len(local_cells) == 2 * 2 * 2
    assert all("test_mse" in r and "train_mse" in r for r in local_cells.values())
    assert slurm_cells == local_cells
    # the light jobs ran beside Snakemake (`localrule: True`), not queued on Slurm
    assert (on_slurm / "results" / "main" / "cells.csv").is_file()
    assert not slurm_jobs(log, "preprocess") and not slurm_jobs(log, "aggregate_main")
    assert "localrule aggregate_main:" in log and "localrule preprocess:" in log


def test_cuda_job_requests_a_gpu(slurm_run, explain):
    _, _, _, log = slurm_run
    gpu_calls, cpu_calls = sbatch_calls(log, "train_gpu"), sbatch_calls(log, "train_main")
    assert gpu_calls and cpu_calls
    assert all(" --gpus=1" in call for call in gpu_calls), gpu_calls
    assert not any("--gpus" in call or "--gres" in call for call in cpu_calls), cpu_calls
    # Slurm's own record of the request: the jobs it accepted for the CUDA experiment hold one GPU each.
    gpu_jobs, cpu_jobs = slurm_jobs(log, "train_gpu"), slurm_jobs(log, "train_main")
    # Slurm 22.05 records `sbatch --gpus=1` as TresPerJob=gres:gpu:1 (`--gres=gpu:1` would be TresPerNode).
    for job_id in gpu_jobs:
        assert scontrol(job_id).get("TresPerJob") == "gres:gpu:1"
    for job_id in cpu_jobs:
        assert "gpu" not in scontrol(job_id).get("TresPerJob", "")


def test_failed_job_is_reported_and_the_rest_finishes(slurm_run, explain):
    _, on_slurm, rc, log = slurm_run
    assert rc != 0 and rc != 124, f"expected snakemake to report a failure, got exit status {rc}"
    gpu_jobs = slurm_jobs(log, "train_gpu")
    retries = yaml.safe_load((on_slurm / "slurm" / "config.yaml").read_text())["retries"]
    assert len(gpu_jobs) == 1 + retries  # the profile's retries resubmit it
    for job_id, slurm_log in gpu_jobs.items():
        assert f"SLURM-job '{job_id}' failed, SLURM status is: 'FAILED'" in log
        assert scontrol(job_id)["JobState"] == "FAILED"
        assert "RuntimeError: config train.device is 'cuda' but CUDA is not available" in slurm_log.read_text()
    assert "Error in rule train_gpu" in log
    assert (on_slurm / "results" / "main" / "cells.csv").is_file()  # --keep-going: the CPU part still finished
    assert not (on_slurm / "results" / "gpu" / "cells.csv").exists()  # its input failed, so it never ran
