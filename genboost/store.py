"""A content-addressed store of cell results.

A result is keyed by everything that determines it: the cell's full config, the preprocessed data, the
training code, the torch version and the device type. A packed job that must rerun because one of its
cells changed finds the others here and does not train them again. Beside a result, the store can keep
the cell's end-of-training state, from which a longer run of the same cell goes on (`genboost.resume`).
"""

from __future__ import annotations

import hashlib
import json
import pickle
from pathlib import Path

import torch

from genboost import files


def result_key(cell_config: dict, context: dict) -> str:
    """SHA-256 of the canonical JSON of (cell config, context)."""
    blob = json.dumps({"cell": cell_config, "context": context}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()


class CellStore:
    def __init__(self, root: str | Path):
        self.root = Path(root)

    def path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.json"

    def get(self, key: str) -> dict | None:
        """The stored record, or None when absent or unreadable (a damaged entry is retrained, not trusted)."""
        try:
            record = json.loads(self.path(key).read_text())
        except (OSError, ValueError):
            return None
        return record if record.get("store_key") == key else None

    def put(self, key: str, record: dict) -> dict:
        """Store the record under its key; returns it as stored (with `store_key`)."""
        stored = {**record, "store_key": key}
        files.write_json(self.path(key), stored)
        return stored

    def state_path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.state.pt"

    def get_state(self, key: str) -> dict | None:
        """The stored training state, or None when absent or unreadable (then the cell trains from the start)."""
        try:
            state = torch.load(self.state_path(key), weights_only=True)
        except (OSError, RuntimeError, ValueError, EOFError, pickle.UnpicklingError):
            return None
        return state if isinstance(state, dict) and state.get("store_key") == key else None

    def put_state(self, key: str, state: dict) -> None:
        with files.atomic_path(self.state_path(key)) as tmp:
            torch.save({**state, "store_key": key}, tmp)
