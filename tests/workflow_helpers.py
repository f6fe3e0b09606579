"""Run the real Snakefile on a tiny study in a temporary copy of the workflow."""

from __future__ import annotations

import copy
import functools
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

REPO_ROOT = Path(__file__).resolve().parent.parent
SNAKEMAKE = [sys.executable, "-m", "snakemake"]


def make_workdir(tmp: Path, csv: Path, edit=None, copy_package: bool = False) -> Path:
    """A copy of the workflow with tests/configs/tiny.yaml as config.yaml, edited by `edit(config)`; the obesity
    dataset read from `csv`, every other one from the shared data folder beside it."""
    tmp.mkdir(parents=True, exist_ok=True)
    shutil.copy(REPO_ROOT / "Snakefile", tmp / "Snakefile")
    shutil.copytree(REPO_ROOT / "workflow", tmp / "workflow", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(REPO_ROOT / "envs", tmp / "envs")
    shutil.copytree(REPO_ROOT / "reference", tmp / "reference")
    if copy_package:  # so a test can edit the package's code; PYTHONPATH puts this copy first
        shutil.copytree(REPO_ROOT / "genboost", tmp / "genboost", ignore=shutil.ignore_patterns("__pycache__"))
    config = yaml.safe_load((REPO_ROOT / "tests" / "configs" / "tiny.yaml").read_text())
    set_local_copies(config, csv)
    if edit:
        edit(config)
    write_config(tmp, config)
    return tmp


def set_local_copies(config: dict, obesity_csv: Path) -> None:
    """Each dataset's local_copy: the obesity CSV given, the others by their URL's file name beside it."""
    for name, entry in config["datasets"].items():
        file = obesity_csv if name == "obesity" else obesity_csv.parent / entry["url"].rsplit("/", 1)[-1]
        entry["local_copy"] = str(file)


def copy_run(src: Path, dst: Path) -> Path:
    """A copy of a finished workdir that Snakemake sees as finished too: results/ and .snakemake/ come along, and
    every file and folder keeps its mtime (shutil.copy2), so nothing is planned again. Tests that change a run
    change their own copy and leave the shared run read-only."""
    shutil.copytree(src, dst, symlinks=True, copy_function=shutil.copy2)
    return dst


def append_code(path: Path, text: str = "\n_EDITED = True\n") -> bytes:
    """Append `text` (a line of code, by default) to a file; its bytes before, to restore it."""
    original = path.read_bytes()
    path.write_bytes(original + text.encode())
    return original


def repo_config() -> dict:
    """config.yaml as YAML reads it (not checked): a fresh copy each call, the file read once per session (~20 ms
    of YAML each time, and the fast tier asks for it about a hundred times)."""
    return copy.deepcopy(_repo_config())


@functools.cache
def _repo_config() -> dict:
    return yaml.safe_load((REPO_ROOT / "config.yaml").read_text())


_CHECKED: dict[str, dict] = {}


def checked_config(config: dict) -> dict:
    """A config as the Snakefile sees it (YAML scalars read, validated, defaults filled): a fresh copy each call.
    Checking reads and validates against the schema (~0.1 s); the tests check the same few configs over and over,
    so a config that passed is remembered by its repr (which keeps the experiments' order) for the session."""
    from genboost.config import settings

    key = repr(config)
    if key not in _CHECKED:
        _CHECKED[key] = settings.checked(copy.deepcopy(config))
    return copy.deepcopy(_CHECKED[key])


def write_config(workdir: Path, config: dict) -> None:
    (workdir / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))


def read_config(workdir: Path) -> dict:
    return yaml.safe_load((workdir / "config.yaml").read_text())


def snakemake(workdir: Path, *args: str, check: bool = True, timeout: int = 600) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    if (workdir / "genboost").is_dir():
        env["PYTHONPATH"] = f"{workdir}{os.pathsep}{env.get('PYTHONPATH', '')}"
    proc = subprocess.run(
        [*SNAKEMAKE, "--cores", "2", *args],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"snakemake {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc


def planned_fields(workdir: Path, *args: str, field: str = "output") -> dict[str, list[str]]:
    """rule name -> the `field` (output, priority, ...) of each of its jobs that a dry run (`snakemake -n`, then
    `args`) plans, as Snakemake prints it; a job that prints no such field adds none."""
    proc = snakemake(workdir, "-n", *args)
    jobs: dict[str, list[str]] = {}
    rule = None
    for line in (proc.stdout + proc.stderr).splitlines():
        m = re.match(r"^(?:local)?(?:rule|checkpoint) (\w+):", line)
        if m:
            rule = m.group(1)
            jobs.setdefault(rule, [])
        elif rule and line.strip().startswith(f"{field}:"):
            jobs[rule].append(line.split(f"{field}:", 1)[1].strip())
    return jobs


def planned(workdir: Path, *args: str) -> dict[str, list[str]]:
    """rule name -> the outputs of each job a dry run plans (`snakemake -n`, then `args`)."""
    jobs = planned_fields(workdir, *args)
    return {rule: [o.strip() for value in values for o in value.split(",")] for rule, values in jobs.items()}


# A model's numbers in its metrics.json: bit-identical wherever and with whatever it trained
NUMBERS = ("test_mse", "train_mse", "test_accuracy", "train_accuracy", "diverged", "steps", "curve")


def train_outputs(jobs: dict) -> list[str]:
    """The outputs of the train jobs a plan (`planned`) holds, sorted."""
    return sorted(o for rule, outs in jobs.items() if rule.startswith("train_") for o in outs)


def edited_copy(run: Path, copy: Path, edit) -> Path:
    """A copy of the finished `run` (`copy_run`) whose config `edit(config)` changed."""
    workdir = copy_run(run, copy)
    config = read_config(workdir)
    edit(config)
    write_config(workdir, config)
    return workdir


def changed_plan(run: Path, copy: Path, edit) -> dict:
    """What a dry run plans in a copy of `run` whose config `edit` changed."""
    return planned(edited_copy(run, copy, edit))


def drawn_png(path: Path):
    """A figure's PNG decoded (rows x columns x RGBA), checked to show more than one flat colour."""
    import matplotlib.image
    import numpy as np

    image = matplotlib.image.imread(path)
    assert image.ndim == 3 and np.ptp(image[..., :3]) > 0, path
    return image


def job_files(metrics_paths: list[str], folder: Path, jobs: int = 2) -> list[str]:
    """The metrics.json records in `jobs` train job files, as the train jobs write them (in the cells' order)."""
    import json

    paths = []
    for i in range(jobs):
        part = metrics_paths[i * len(metrics_paths) // jobs : (i + 1) * len(metrics_paths) // jobs]
        path = Path(folder) / f"job-{i + 1}of{jobs}.json"
        path.write_text(json.dumps({"cells": [json.loads(Path(p).read_text()) for p in part]}))
        paths.append(str(path))
    return paths
