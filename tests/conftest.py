"""Shared fixtures: the repository root and the real CSVs of the datasets (kept outside the repository)."""

from __future__ import annotations

import ast
import collections
import functools
import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
DATA_CSV_NAME = "ObesityDataSet_raw_and_data_sinthetic.csv"
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"


@pytest.fixture(scope="module")
def one_torch_thread():
    """One torch thread, as the train jobs run: 2 threads on a busy 2-core machine make tiny ops stall on OpenMP."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


def shared_csv(path: Path, variable: str) -> Path:
    """A real CSV, or a skip (a failure on CI, which always has the shared copy) when it is not there."""
    if not path.is_file():
        message = f"the CSV is not at {path}; set {variable} to its path"
        if os.environ.get("CI"):  # CI always has the shared copy: a skip there would hide a broken setup
            pytest.fail(message)
        pytest.skip(message)
    return path


@pytest.fixture(scope="session")
def obesity_csv() -> Path:
    """The real obesity CSV: $GENBOOST_DATA_CSV, else <repo>/../shared/data/<name>."""
    return shared_csv(Path(os.environ.get("GENBOOST_DATA_CSV") or SHARED_DATA / DATA_CSV_NAME), "GENBOOST_DATA_CSV")


@pytest.fixture(scope="session")
def anes96_csv(obesity_csv) -> Path:
    """The real anes96 CSV (statsmodels' copy), in the obesity CSV's folder (as tests/workflow_helpers.py finds it)."""
    return shared_csv(obesity_csv.parent / "anes96.csv", "GENBOOST_DATA_CSV (its folder)")


@pytest.fixture(scope="session")
def fair_csv(obesity_csv) -> Path:
    """The real fair CSV (statsmodels' copy), in the obesity CSV's folder."""
    return shared_csv(obesity_csv.parent / "fair.csv", "GENBOOST_DATA_CSV (its folder)")


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory, obesity_csv) -> Path:
    """The tiny study (packed jobs) confirmed on 5 fresh seeds, run once for tests/test_workflow.py and
    tests/test_workflow_confirm.py. Tests only read it; one that edits works on a copy (`copy_run`)."""
    from workflow_helpers import make_workdir, snakemake

    workdir = make_workdir(tmp_path_factory.mktemp("tiny"), obesity_csv, lambda c: c.update(confirm={"seeds": 5}))
    snakemake(workdir)
    return workdir


@pytest.fixture(scope="session")
def unpacked_run(tmp_path_factory, obesity_csv) -> Path:
    """The tiny study cut to one cell per job, one optimizer, two cells (SGD at lr 2e-2, wd 0, rho 0 and 0.05, seed
    0; the design card's shape), with a copy of the package to edit: run once for the edits of
    tests/test_workflow_edits.py, test_workflow_measure.py, test_fingerprint.py and test_bench_edits.py. Tests only
    read it; one that edits works on a copy (`copy_run`)."""
    from workflow_helpers import make_workdir, snakemake

    def edit(config):
        config["train"]["pack"] = []
        config["experiments"] = {
            "main": {"optimizers": ["sgd"], "lrs": [2e-2], "wds": [0], "rhos": [0, 0.05], "seeds": [0]}
        }

    workdir = make_workdir(tmp_path_factory.mktemp("unpacked"), obesity_csv, edit, copy_package=True)
    snakemake(workdir)
    return workdir


@pytest.fixture(scope="session")
def split_csvs(tmp_path_factory, obesity_csv) -> tuple[str, str]:
    """The real data preprocessed as the study does (train.csv, test.csv, manifest.json beside), for tests of
    train jobs."""
    import yaml

    from genboost.data.preprocess import preprocess

    out = tmp_path_factory.mktemp("data")
    entry = yaml.safe_load((REPO_ROOT / "config.yaml").read_text())["datasets"]["obesity"]
    settings = {"test_fraction": 0.2, "split_seed": 0}  # config.yaml's; scale "none"
    dataset = {"name": "obesity", **entry}
    preprocess(obesity_csv, out / "train.csv", out / "test.csv", out / "manifest.json", dataset, **settings)
    return str(out / "train.csv"), str(out / "test.csv")


@pytest.fixture(scope="session")
def linear_split():
    """200 training and 60 test rows of 10 features, a learnable ordinal target (0..6) from a random linear map,
    so training is smooth and comparable: the engine's and the oracle's tests on small data."""
    import torch

    from genboost.data.tensors import Split

    g = torch.Generator().manual_seed(7)
    x = torch.randn(260, 10, generator=g)
    y = (x @ torch.randn(10, generator=g)).clamp(-3, 3).add(3).round()
    return Split(x[:200], y[:200], x[200:], y[200:], classes=7)


# What a fresh process imports: the start of a figures job, then of a train job. "scipy" is looked at after drawing
# the heatmap and the lr curves (before any training could import it), "torch._dynamo" after training a cell.
FRESH_PROCESS = """
import json, pathlib, sys, tempfile
sys.path.insert(0, 'tests')
from test_figures import synthetic
from genboost.analysis.figures import heatmap_grid, lr_curves
cells = synthetic().query('rho == 0')  # two panels and a diverged mark: fewer to draw, the same code
with tempfile.TemporaryDirectory() as folder:
    d = pathlib.Path(folder)
    heatmap_grid(cells, d / 'h.png', d / 'h.pdf'); lr_curves(cells, d / 'l.png', d / 'l.pdf')
drawn = {'scipy': 'scipy' in sys.modules}
import torch
from genboost.train.engine import train_blocks
from genboost.train.model import Cell, Split
x = torch.randn(40, 5); y = torch.randint(0, 7, (40,)).float()
list(train_blocks([Cell('adam', 1e-3, 1e-4, 0.05, seed=0, epochs=2, hidden=(4,))], Split(x, y, x, y)))
print(json.dumps({**drawn, 'torch._dynamo': 'torch._dynamo' in sys.modules}))
"""
_started = []  # the FRESH_PROCESS run, started once the session knows a test asks for it


def _start_fresh_process():
    import subprocess
    import sys

    return subprocess.Popen(
        [sys.executable, "-c", FRESH_PROCESS], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO_ROOT
    )


def pytest_collection_finish(session):
    """Start the fresh process as soon as the tests are chosen: it then runs (4-5 s: torch, matplotlib, a drawing)
    on the second core while the first tests run, instead of holding up the test that reads it. In an xdist worker,
    which collects every test not knowing which it will run, it starts with the first test of its group instead
    (pytest_runtest_setup)."""
    if not os.environ.get("PYTEST_XDIST_WORKER") and any(_needs_fresh_process(item) for item in session.items):
        _started.append(_start_fresh_process())


def _needs_fresh_process(item) -> bool:
    return "fresh_process_imports" in getattr(item, "fixturenames", ())


# pytest-xdist (pyproject's addopts) runs one worker per core, each taking whole groups of tests: a test file is a
# group, so its module fixtures are built once, and the files whose tests or fixtures take one of these session
# fixtures are one group per fixture, so it is built once. Heavy groups go first, so a short one finishes last.
SHARED = {"tiny_run": "tests/tiny-run", "unpacked_run": "tests/unpacked-run", "fresh_process_imports": "tests/fresh"}


@functools.cache
def shared_groups() -> dict[str, str]:
    """test file name -> the group of the SHARED fixture its tests or fixtures take, read from their source (the
    scheduler sees only test ids)."""
    found = {}
    for path in sorted(Path(__file__).parent.glob("test_*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        functions = (n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef))
        taken = [SHARED[a.arg] for f in functions for a in f.args.args if a.arg in SHARED]
        if taken:
            found[path.name] = taken[0]
    return found


def group_of(nodeid: str) -> str:
    """The group of a test id: its file's shared group, or its file."""
    file = nodeid.split("::", 1)[0]
    return shared_groups().get(Path(file).name, file)


def pytest_configure(config):
    """An xdist worker computes on one torch thread: the workers already fill the cores, and two threads per worker
    on them spin in OpenMP (a test that needs more sets its own)."""
    if os.environ.get("PYTEST_XDIST_WORKER"):
        import torch

        torch.set_num_threads(1)


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    """In an xdist worker, the groups with the most slow tests first (the scheduler keeps this order), and the tests
    that read the fresh process last."""
    if not os.environ.get("PYTEST_XDIST_WORKER"):
        return
    slow = collections.Counter(group_of(item.nodeid) for item in items if item.get_closest_marker("slow"))
    items.sort(key=lambda item: (-slow[group_of(item.nodeid)], _needs_fresh_process(item)))


def pytest_runtest_setup(item):
    """In an xdist worker, the fresh process starts with the first test of the group that reads it, whose other
    tests (sorted first) then run beside it."""
    if os.environ.get("PYTEST_XDIST_WORKER") and not _started:
        if group_of(item.nodeid) == SHARED["fresh_process_imports"]:
            _started.append(_start_fresh_process())


@pytest.hookimpl(tryfirst=True, optionalhook=True)
def pytest_xdist_make_scheduler(config, log):
    """xdist's file scheduling, with group_of for the file and the workers' order kept."""
    from xdist.scheduler import LoadScopeScheduling

    class GroupScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return group_of(nodeid)

    config.option.loadscopereorder = False
    return GroupScheduling(config, log)


@pytest.fixture(scope="session")
def fresh_process_imports() -> dict[str, bool]:
    """{module: whether FRESH_PROCESS had imported it}, for "scipy" (after drawing) and "torch._dynamo" (after
    training): one process for both checks, since each start costs seconds of imports."""
    import json

    if not _started:
        _started.append(_start_fresh_process())
    process = _started[0]
    out, err = process.communicate(timeout=600)
    assert process.returncode == 0, err
    return json.loads(out)
