"""An installed genboost (not editable, no checkout beside it) finds its schema and plans the study."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest
import yaml
from workflow_helpers import REPO_ROOT, checked_config

from genboost.config.study import Study

# Run by the installed package, in a folder holding nothing else: the study of the config given, validated.
PLAN = """
import json, sys
import yaml
import genboost
from genboost.config import settings
from genboost.config.study import Study
study = Study.from_config(settings.checked(yaml.safe_load(open(sys.argv[1]))))
cells = {e.name: repr(e.cells()) for e in study.experiments}
print(json.dumps({"package": genboost.__file__, "schema": str(settings.SCHEMA), "cells": cells}))
"""


def succeeded(args: list[str], **kwargs) -> str:
    """The command's output; a failure shows what it wrote to stderr."""
    done = subprocess.run(args, capture_output=True, text=True, **kwargs)
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.mark.slow
def test_an_installed_genboost_plans_the_study_of_config_yaml(tmp_path):
    source, target, elsewhere = tmp_path / "source", tmp_path / "site", tmp_path / "elsewhere"
    for name in ("pyproject.toml", "README.md"):  # what the build reads, copied so it writes nothing here
        (source / name).parent.mkdir(exist_ok=True)
        shutil.copy(REPO_ROOT / name, source / name)
    shutil.copytree(REPO_ROOT / "genboost", source / "genboost", ignore=shutil.ignore_patterns("__pycache__"))
    pip = [sys.executable, "-m", "pip", "install", "--no-deps", "--no-build-isolation", "--no-index", "--quiet"]
    succeeded([*pip, "--target", str(target), str(source)])
    shutil.rmtree(source)
    elsewhere.mkdir()
    env = {**os.environ, "PYTHONPATH": str(target)}
    config = REPO_ROOT / "config.yaml"
    planned = json.loads(succeeded([sys.executable, "-c", PLAN, str(config)], cwd=elsewhere, env=env))
    assert planned["package"] == str(target / "genboost" / "__init__.py")
    assert planned["schema"] == str(target / "genboost" / "config" / "schema.yaml")
    here = Study.from_config(checked_config(yaml.safe_load(config.read_text())))
    assert planned["cells"] == {e.name: repr(e.cells()) for e in here.experiments}
