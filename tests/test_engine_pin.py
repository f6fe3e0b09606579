"""A regression pin: the engine's numbers on the real data, bit for bit, as recorded in engine_pin.json.

Speed work on the engine must not move a single bit of any model (the study's results are pinned to them).
The cells cover every code path of the update: SGD with and without momentum, coupled and decoupled weight
decay, Adam / AdamW, SAM and ASAM, a float64 block, a cell that diverges beside others, several (lr, wd)
groups of several cells in one block, across an lr change (t_max 2). engine_pin.json was written by this
module (`python tests/test_engine_pin.py --write`) from the engine as it was before the speed work; only an
intended change of the numbers may rewrite it, and the commit that does must say why.

It was written where torch's CPU capability (`torch.backends.cpu.get_cpu_capability()`) is AVX512 and holds bit
for bit on AVX2 too (checked on an AMD EPYC, torch 2.13), so it runs on every CPU: no CPU is known where it
fails. Should one turn up, skip there with a reason naming that capability.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import sys
import tempfile
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
PIN = HERE / "engine_pin.json"
EPOCHS, T_MAX = 3, 2
SETUPS = {
    "sgd": dict(optimizer="sgd"),
    "sgd-momentum-decoupled": dict(optimizer="sgd", momentum=0.9, wd_mode="decoupled"),
    "adam": dict(optimizer="adam"),
    "adamw": dict(optimizer="adam", wd_mode="decoupled"),
    "sgd+sam": dict(optimizer="sgd", rho=0.05),
    "adam+sam": dict(optimizer="adam", rho=0.02),
    "adam+asam": dict(optimizer="adam", rho=0.1, sam_adaptive=True),
    "adam-float64": dict(optimizer="adam", dtype="float64"),
}
LRS, WDS, SEEDS = (3e-4, 2e-2), (0.0, 1e-2), (0, 1)


def pin_cells():
    """(name, cell) pairs: each setup over lr x wd x seed, and an SGD cell whose lr makes it diverge."""
    from genboost.train.model import Cell

    out = []
    for name, setup in SETUPS.items():
        setup = {"rho": 0.0, **setup}
        for lr, wd, seed in itertools.product(LRS, WDS, SEEDS):
            cell = Cell(lr=lr, wd=wd, seed=seed, epochs=EPOCHS, t_max=T_MAX, **setup)
            out.append((f"{name} lr={lr} wd={wd} seed={seed}", cell))
    out.append(("sgd lr=1.0 diverges", Cell("sgd", 1.0, 0.0, 0.0, seed=3, epochs=EPOCHS, t_max=T_MAX)))
    return out


def fingerprint(result: dict) -> dict:
    """A result's metrics, floats in hex (exact), and a hash of its final weights' bytes."""
    weights = hashlib.sha256()
    for w, b in result["params"]:
        weights.update(w.contiguous().numpy().tobytes())
        weights.update(b.contiguous().numpy().tobytes())
    metrics = ("train_mse", "test_mse", "train_accuracy", "test_accuracy")
    return {
        **{k: float(result[k]).hex() for k in metrics},
        "diverged_step": result["diverged_step"],
        "steps": result["steps"],
        "weights_sha256": weights.hexdigest(),
    }


def preprocessed(csv: Path, out: Path) -> tuple[Path, Path]:
    """The obesity split as config.yaml makes it (train.csv, test.csv, manifest.json in `out`)."""
    import yaml

    from genboost.data.preprocess import preprocess

    entry = yaml.safe_load((HERE.parent / "config.yaml").read_text())["datasets"]["obesity"]
    files = [out / name for name in ("train.csv", "test.csv", "manifest.json")]
    preprocess(csv, *files, {"name": "obesity", **entry}, test_fraction=0.2, split_seed=0)
    return files[0], files[1]


def compute(csv: Path) -> dict:
    from engine_helpers import train_in_order

    from genboost.data.tensors import load_split

    with tempfile.TemporaryDirectory() as tmp:
        split = load_split(*preprocessed(csv, Path(tmp)))
    names, cells = zip(*pin_cells(), strict=True)
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        results = train_in_order(cells, split, return_params=True)
    finally:
        torch.set_num_threads(previous)
    return {name: fingerprint(r) for name, r in zip(names, results, strict=True)}


def test_the_engine_gives_the_pinned_bits_on_the_real_data(obesity_csv):
    want = json.loads(PIN.read_text())
    got = compute(obesity_csv)
    assert got.keys() == want.keys()
    assert want["sgd lr=1.0 diverges"]["diverged_step"] is not None  # the pin covers the divergence path
    wrong = {name: (got[name], want[name]) for name in want if got[name] != want[name]}
    assert not wrong, f"{len(wrong)} of {len(want)} cells moved, e.g. {next(iter(wrong.items()))}"


if __name__ == "__main__":
    if sys.argv[1:] != ["--write"]:
        sys.exit("usage: python tests/test_engine_pin.py --write   (rewrites engine_pin.json from the engine now)")
    sys.path.insert(0, str(HERE.parent))
    from conftest import DATA_CSV_NAME

    figures = compute(HERE.parent.parent / "shared" / "data" / DATA_CSV_NAME)
    PIN.write_text(json.dumps(figures, indent=1, sort_keys=True) + "\n")
    print(f"wrote {PIN}: {len(figures)} cells")
