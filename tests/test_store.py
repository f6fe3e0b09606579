"""The store uses an entry only when it is a whole result (or state) of the expected cell."""

from __future__ import annotations

import json
import logging

import pytest
import torch

from genboost.train.model import Cell
from genboost.train.store import CellStore, record_problem

KEY = "ab" * 32
CELL = Cell("adam", 1e-3, 0.0, 0.05, seed=0, epochs=4, hidden=(4,))
WHOLE = {
    "train_mse": 0.5, "test_mse": 0.6, "train_accuracy": 0.7, "test_accuracy": None, "diverged": False, "steps": 8,
    "config": CELL.to_dict(), "curve": [],
}  # fmt: skip


@pytest.fixture
def store(tmp_path):
    return CellStore(tmp_path)


def write_entry(store: CellStore, entry) -> None:
    store.path(KEY).parent.mkdir(parents=True, exist_ok=True)
    store.path(KEY).write_text(json.dumps(entry))


def test_a_whole_record_of_the_cell_is_returned_as_stored(store):
    stored = store.put(KEY, WHOLE)
    assert stored == {**WHOLE, "store_key": KEY}
    assert store.get(KEY, CELL.to_dict(), required=["curve"]) == stored
    assert store.get("cd" * 32, CELL.to_dict()) is None  # absent


@pytest.mark.parametrize(
    "entry,why",
    [
        ([], "JSON list"),
        ("text", "JSON str"),
        ({"store_key": KEY}, "its config is not the cell's"),
        ({**WHOLE, "store_key": "ef" * 32}, "its store_key is"),
        ({k: v for k, v in WHOLE.items() if k != "test_mse"} | {"store_key": KEY}, "no test_mse"),
        ({**WHOLE, "store_key": KEY, "config": {**CELL.to_dict(), "seed": 1}}, "its config is not the cell's"),
        ({**WHOLE, "store_key": KEY, "test_mse": "0.6"}, "test_mse are not of the right type"),
        ({**WHOLE, "store_key": KEY, "diverged": "no"}, "not of the right type"),
        ({**WHOLE, "store_key": KEY, "steps": 8.5}, "not of the right type"),
    ],
)
def test_an_entry_of_the_wrong_shape_counts_as_absent_and_is_logged(store, entry, why, caplog):
    write_entry(store, entry)
    with caplog.at_level(logging.WARNING, logger="genboost"):
        assert store.get(KEY, CELL.to_dict()) is None
    assert why in caplog.text and "the cell is trained again" in caplog.text
    assert why in record_problem(entry, KEY, CELL.to_dict())


def test_an_entry_without_what_the_analysis_adds_counts_as_absent(store):
    store.put(KEY, {k: v for k, v in WHOLE.items() if k != "curve"})
    assert store.get(KEY, CELL.to_dict()) is not None
    assert store.get(KEY, CELL.to_dict(), required=["curve"]) is None


def test_truncated_json_counts_as_absent(store, caplog):
    store.put(KEY, WHOLE)
    store.path(KEY).write_text(store.path(KEY).read_text()[:40])
    with caplog.at_level(logging.WARNING, logger="genboost"):
        assert store.get(KEY, CELL.to_dict()) is None
    assert "cannot be read as JSON" in caplog.text


def test_a_state_is_returned_only_when_the_check_passes(store, caplog):
    store.put_state(KEY, {"epoch": 1, "steps": 7})
    assert store.get_state(KEY, check=lambda s: None)["steps"] == 7
    with caplog.at_level(logging.WARNING, logger="genboost"):
        assert store.get_state(KEY, check=lambda s: f"its epoch {s['epoch']} is not in 2..4") is None
    assert "its epoch 1 is not in 2..4; the cell trains from the start" in caplog.text
    store.state_path("cd" * 32).parent.mkdir()
    store.state_path(KEY).rename(store.state_path("cd" * 32))  # a state stored under another key
    assert store.get_state("cd" * 32) is None and "it is not stored under its key" in caplog.text


def test_weights_are_returned_only_when_whole_of_the_cells_shape_and_dtype(store, caplog):
    params = [(torch.ones(3, 4), torch.zeros(4)), (torch.ones(4, 1), torch.zeros(1))]
    store.put_weights(KEY, params)
    got = store.get_weights(KEY, [4], "float32")
    assert all(torch.equal(a, b) for pa, pb in zip(got, params, strict=True) for a, b in zip(pa, pb, strict=True))
    assert store.get_weights("cd" * 32, [4], "float32") is None  # absent
    with caplog.at_level(logging.WARNING, logger="genboost"):
        assert store.get_weights(KEY, [5], "float32") is None
        assert "not a layer of width 5" in caplog.text
        assert store.get_weights(KEY, [4], "float64") is None
        assert "is torch.float32, not torch.float64" in caplog.text
        assert store.get_weights(KEY, [4, 4], "float32") is None
        store.weights_path(KEY).write_bytes(b"not a torch file")
        assert store.get_weights(KEY, [4], "float32") is None
        assert "cannot be read as a torch file" in caplog.text
    assert not list(store.root.rglob("*.tmp"))
