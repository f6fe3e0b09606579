"""A content-addressed store of cell results.

A result is keyed by everything that determines it: the cell's full config, the preprocessed data, the
training code, the torch version and the device type. A packed job that must rerun because one of its
cells changed finds the others here and does not train them again.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

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
