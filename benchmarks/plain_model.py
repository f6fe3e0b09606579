"""One model of the study trained by the oracle, the plain loop (`genboost.train.oracle`: nn.Module, torch.optim),
in this fresh Python process: the per-model cost that bench_study.py's plain baseline times, start-up,
imports and data loading included.

    python benchmarks/plain_model.py TRAIN_CSV TEST_CSV CELL_JSON
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from genboost.data.tensors import load_split  # noqa: E402
from genboost.train.model import Cell  # noqa: E402
from genboost.train.oracle import train_cell  # noqa: E402


def main(train_csv: str, test_csv: str, cell_json: str) -> None:
    torch.set_num_threads(1)  # as the study's jobs: one thread per process, one process per core
    cell = Cell.from_dict(json.loads(cell_json))
    result = train_cell(cell, load_split(train_csv, test_csv))
    print(f"{cell.optimizer} lr={cell.lr:g} wd={cell.wd:g} rho={cell.rho:g}: test MSE {result['test_mse']:.4f}")


if __name__ == "__main__":
    main(*sys.argv[1:])
