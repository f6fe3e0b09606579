"""Shared fixtures: the repository root and the verified obesity CSV (kept outside the repository)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
DATA_CSV_NAME = "ObesityDataSet_raw_and_data_sinthetic.csv"


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


@pytest.fixture(scope="session")
def obesity_csv() -> Path:
    """The real CSV: $GENBOOST_DATA_CSV, else <repo>/../shared/data/<name>."""
    path = Path(os.environ.get("GENBOOST_DATA_CSV") or REPO_ROOT.parent / "shared" / "data" / DATA_CSV_NAME)
    if not path.is_file():
        message = f"the obesity CSV is not at {path}; set GENBOOST_DATA_CSV to its path"
        if os.environ.get("CI"):  # CI always has the shared copy: a skip there would hide a broken setup
            pytest.fail(message)
        pytest.skip(message)
    return path


@pytest.fixture(scope="session")
def split_csvs(tmp_path_factory, obesity_csv) -> tuple[str, str]:
    """The real data preprocessed as the study does (train.csv, test.csv), for tests of train jobs."""
    from genboost.data import preprocess as data

    out = tmp_path_factory.mktemp("data")
    settings = {"drop_columns": ["Weight"], "test_fraction": 0.2, "split_seed": 0}  # config.yaml's; scale "none"
    data.preprocess(obesity_csv, out / "train.csv", out / "test.csv", out / "manifest.json", **settings)
    return str(out / "train.csv"), str(out / "test.csv")
