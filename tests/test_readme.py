"""Every `snakemake` command the README (and slurm/README.md, docs/README.md) shows plans (a dry run) on the real
config."""

from __future__ import annotations

import importlib.util
import os
import re
import shlex
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import yaml
from workflow_helpers import REPO_ROOT, planned, set_local_copies, snakemake

README = "\n".join((REPO_ROOT / name).read_text() for name in ("README.md", "slurm/README.md", "docs/README.md"))


def readme_commands() -> list[str]:
    """The snakemake commands of the README's code blocks and inline code, one per `&&` part, comments cut."""
    blocks = re.findall(r"```bash\n(.*?)```", README, re.S)
    spans = [line for block in blocks for line in block.splitlines()]
    spans += re.findall(r"`(snakemake [^`]+)`", README)
    parts = [p.split(" #")[0].strip() for span in spans for p in span.split("&&")]
    return sorted({p for p in parts if p.startswith("snakemake ")})


COMMANDS = readme_commands()


def dry_run_args(command: str) -> tuple[str, ...]:
    """The command's arguments as a dry run: any --cores N dropped (the helper passes --cores 2), -n added."""
    args = shlex.split(command)[1:]
    if "--cores" in args:
        i = args.index("--cores")
        args = args[:i] + args[i + 2 :]
    return (*args, *([] if "-n" in args else ["-n"]))


# "Your own dataset": its walk-through's config file (the section's first YAML block, saved under the name its
# `--configfile` gives) and its commands, run as written in that order (test_own_dataset_walk_through_runs_as_written),
# not on config.yaml alone.
OWN_DATASET = README.split("### Your own dataset", 1)[1].split("\n### ", 1)[0].split("\nTwo more datasets come", 1)[0]
OWN_YAML = re.search(r"```yaml\n(.*?)```", OWN_DATASET, re.S).group(1)
OWN_COMMANDS = [c.strip() for block in re.findall(r"```bash\n(.*?)```", OWN_DATASET, re.S) for c in block.splitlines()]


# Commands that differ only in --cores or -n are one dry run (`snakemake --cores 4`, `snakemake --cores 2`).
DRY_RUNS = {dry_run_args(c): c for c in reversed(COMMANDS)}


def test_the_readme_shows_the_commands_a_user_needs():
    assert "snakemake --cores 4" in COMMANDS
    assert any("--config" in c and "modern" in c for c in COMMANDS)
    assert any("--profile slurm" in c for c in COMMANDS)


@pytest.fixture(scope="module")
def checkout(tmp_path_factory, obesity_csv) -> Path:
    """The workflow with the real config.yaml, reading the shared CSV instead of downloading."""
    work = tmp_path_factory.mktemp("readme")
    for name in ("Snakefile", "config.yaml"):
        shutil.copy(REPO_ROOT / name, work / name)
    for name in ("workflow", "envs", "reference", "slurm"):
        shutil.copytree(REPO_ROOT / name, work / name, ignore=shutil.ignore_patterns("__pycache__"))
    config = yaml.safe_load((work / "config.yaml").read_text())
    set_local_copies(config, obesity_csv)
    (work / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    return work


def skipped(args: tuple[str, ...]) -> str | None:
    """Why a README command is not dry-run here, or None."""
    if DRY_RUNS[args] in OWN_COMMANDS:
        return "plans with the README's own dataset: test_own_dataset_plans_only_its_experiment"
    if "--report" in args:
        return "a report needs a finished run: tests/test_workflow.py builds one on the tiny study"
    if "--profile" in args and importlib.util.find_spec("snakemake_executor_plugin_slurm") is None:
        return "the Slurm plugin is not installed (pip install -e '.[slurm]')"
    return None


@pytest.fixture(scope="module")
def dry_runs(checkout, tmp_path_factory) -> dict[tuple[str, ...], subprocess.CompletedProcess]:
    """args -> the finished dry run of every README command not skipped, each in its own copy of the checkout, run
    side by side: a dry run is ~2 s of one core, mostly imports."""
    todo = [args for args in sorted(DRY_RUNS) if not skipped(args)]
    copies = [shutil.copytree(checkout, tmp_path_factory.mktemp("readme_run") / "checkout") for _ in todo]
    with ThreadPoolExecutor(max_workers=os.cpu_count()) as pool:
        done = pool.map(lambda args, workdir: snakemake(workdir, *args, check=False), todo, copies)
        return dict(zip(todo, done, strict=True))


@pytest.mark.slow
@pytest.mark.parametrize("args", sorted(DRY_RUNS), ids=lambda a: DRY_RUNS[a])
def test_readme_command_plans(dry_runs, args):
    command = DRY_RUNS[args]
    if skipped(args):
        pytest.skip(skipped(args))
    proc = dry_runs[args]
    assert proc.returncode == 0, f"{command}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    said = proc.stdout + proc.stderr
    assert any(words in said for words in ("Job stats", "Nothing to be done", "Unlocked working directory")), said


def shell(workdir: Path, command: str) -> subprocess.CompletedProcess:
    """A README command run as a user's shell would, with this venv's python first on the PATH."""
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    return subprocess.run(command, shell=True, cwd=workdir, env=env, capture_output=True, text=True, timeout=300)


@pytest.mark.slow
def test_own_dataset_walk_through_runs_as_written(tmp_path):
    """README's walk-through in a fresh checkout: its commands make the CSV and print the checksum its config file
    states; its snakemake commands plan that experiment's jobs from the local copy and nothing of the default study
    (no obesity download, no main or second_chance job)."""
    work = tmp_path
    for name in ("Snakefile", "config.yaml"):
        shutil.copy(REPO_ROOT / name, work / name)
    for name in ("workflow", "envs", "reference"):
        shutil.copytree(REPO_ROOT / name, work / name, ignore=shutil.ignore_patterns("__pycache__"))
    own = yaml.safe_load(OWN_YAML)
    (name, entry), (mine,) = next(iter(own["datasets"].items())), [e for e, s in own["experiments"].items() if
                                                                     s.get("enabled", True)]  # fmt: skip
    assert "url" not in entry and entry["local_copy"], "the walk-through reads a local copy, without url"
    files = {args[args.index("--configfile") + 1] for c in OWN_COMMANDS if "--configfile" in (args := shlex.split(c))}
    (config_file,) = files
    (work / config_file).write_text(OWN_YAML)
    planned_any = False
    for command in OWN_COMMANDS:
        if not command.startswith("snakemake "):
            proc = shell(work, command)
            assert proc.returncode == 0, (command, proc.stderr)
            if command.startswith("sha256sum"):
                assert proc.stdout.split()[0] == entry["sha256"], "the README's checksum is the file's"
            continue
        if "--report" in command:
            continue  # a report needs a finished run: tests/test_workflow.py builds one on the tiny study
        jobs = planned(work, *[a for a in dry_run_args(command) if a != "-n"])
        assert f"train_{mine}" in jobs and f"download_{name}" in jobs, (command, sorted(jobs))
        assert not [r for r in jobs if r.endswith(("_main", "_second_chance", "_obesity"))], (command, sorted(jobs))
        assert jobs[f"download_{name}"][0].split()[0] == f"resources/{name}/{entry['local_copy']}"
        planned_any = True
    assert planned_any, "the walk-through runs its experiment"
