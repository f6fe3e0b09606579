"""A content-addressed store of cell results.

A result is keyed by everything that determines it: the cell's full config, the preprocessed data, the
training code, the torch version and the device type. A packed job that must rerun because one of its
cells changed finds the others here and does not train them again. Beside each result the store keeps the
model's trained weights, which the measure jobs read (`genboost.measures.job`), and where asked the cell's
end-of-training state, from which a longer run of the same cell goes on (`genboost.train.resume`).
An entry is used only when it is whole and of the expected cell: anything else counts as absent, so a
damaged or foreign entry is trained again, never trusted. The measure store (`genboost.measures.store`) keeps
the measures of the stored models with the same mechanics.
"""

from __future__ import annotations

import hashlib
import json
import logging
import pickle
from collections.abc import Callable, Iterable
from functools import partial
from pathlib import Path

import torch

from genboost import files

log = logging.getLogger("genboost")
METRIC_KEYS = ("train_mse", "test_mse", "train_accuracy", "test_accuracy")


def result_key(cell_config: dict, context: dict) -> str:
    """SHA-256 of the canonical JSON of (cell config, context)."""
    blob = json.dumps({"cell": cell_config, "context": context}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()


def number_or_none(x) -> bool:
    return x is None or (isinstance(x, (int, float)) and not isinstance(x, bool))


def record_problem(record, key: str, config: dict, required: Iterable[str] = ()) -> str | None:
    """Why `record` is not a whole result of the cell `config` stored under `key`, or None when it is.

    A whole result holds the metrics (numbers, or null where not finite), `diverged`, `steps`, the cell's
    config and every key of `required` (what the analysis adds, such as "curve" or "flatness")."""
    if not isinstance(record, dict):
        return f"it holds a JSON {type(record).__name__}, not an object"
    if record.get("store_key") != key:
        return f"its store_key is {record.get('store_key')!r}"
    if record.get("config") != config:
        return "its config is not the cell's"
    missing = [k for k in (*METRIC_KEYS, "diverged", "steps", *required) if k not in record]
    if missing:
        return f"it has no {', '.join(missing)}"
    wrong = [k for k in METRIC_KEYS if not number_or_none(record[k])]
    if wrong or not isinstance(record["diverged"], bool) or type(record["steps"]) is not int:
        return f"its {', '.join(wrong) or 'diverged or steps'} are not of the right type"
    return None


def weights_problem(params, hidden, dtype: str) -> str | None:
    """Why `params` are not the weights [(W [in, out], b [out]), ...] of an MLP of these hidden widths and dtype
    ("float32"), or None when they are."""
    widths = [*hidden, 1]
    if not isinstance(params, list) or len(params) != len(widths):
        return f"its params are not {len(widths)} layers"
    fan_in = None
    for layer, (pair, width) in enumerate(zip(params, widths, strict=True)):
        if not (isinstance(pair, (list, tuple)) and len(pair) == 2 and all(isinstance(t, torch.Tensor) for t in pair)):
            return f"its layer {layer} is not a (W, b) pair of tensors"
        w, b = pair
        if w.dtype != getattr(torch, dtype) or b.dtype != w.dtype:
            return f"its layer {layer} is {w.dtype}, not torch.{dtype}"
        if w.ndim != 2 or w.shape[1] != width or tuple(b.shape) != (width,) or fan_in not in (None, w.shape[0]):
            return f"its layer {layer} has shapes {tuple(w.shape)}, {tuple(b.shape)}, not a layer of width {width}"
        fan_in = width
    return None


def norm_weights_problem(norm_params, hidden, dtype: str) -> str | None:
    """Why `norm_params` are not the (gain [width], bias [width]) of each hidden layer's norm, or None."""
    if not isinstance(norm_params, list) or len(norm_params) != len(hidden):
        return f"its norm_params are not {len(hidden)} layers"
    for layer, (pair, width) in enumerate(zip(norm_params, hidden, strict=True)):
        tensors = isinstance(pair, (list, tuple)) and len(pair) == 2 and all(isinstance(t, torch.Tensor) for t in pair)
        if not tensors or any(t.dtype != getattr(torch, dtype) or tuple(t.shape) != (width,) for t in pair):
            return f"its norm layer {layer} is not a (gain, bias) pair of {dtype} tensors of width {width}"
    return None


def _weights_problem(stored: dict, hidden, dtype: str, norm: str) -> str | None:
    problem = weights_problem(stored.get("params"), hidden, dtype)
    if problem is None and norm != "none":
        problem = norm_weights_problem(stored.get("norm_params"), hidden, dtype)
    return problem


class CellStore:
    refused_then = "the cell is trained again"  # what follows when an entry is refused

    def __init__(self, root: str | Path):
        self.root = Path(root)

    def path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.json"

    def get(self, key: str, config: dict, required: Iterable[str] = ()) -> dict | None:
        """The stored result of the cell `config` (see `record_problem`), or None when absent, unreadable or
        not a whole result of that cell (then the cell is trained again)."""
        return self.get_json(key, partial(record_problem, key=key, config=config, required=required))

    def get_json(self, key: str, check: Callable[[object], str | None]) -> dict | None:
        """The JSON entry stored under `key`, or None when absent, unreadable or refused by `check` (which returns
        why an entry does not fit, or None when it does); a refusal is logged."""
        try:
            record = json.loads(self.path(key).read_text())
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as e:
            return self._refused(self.path(key), f"it cannot be read as JSON ({e})")
        problem = check(record)
        return self._refused(self.path(key), problem) if problem else record

    def put(self, key: str, record: dict) -> dict:
        """Store the record under its key; returns it as stored (with `store_key`)."""
        stored = {**record, "store_key": key}
        files.write_json(self.path(key), stored)
        return stored

    def weights_path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.weights.pt"

    def get_weights(
        self, key: str, hidden, dtype: str, norm: str = "none"
    ) -> list[tuple[torch.Tensor, torch.Tensor]] | None:
        """The stored trained weights [(W [in, out], b [out]), ...] of a model of these hidden widths and dtype
        ("float32"), or None when absent, unreadable or not of that shape (then the cell is trained again). With
        a `norm` (config key model.norm), the entry must hold its gains and biases too (`get_norm_weights`)."""
        stored = self._load(
            self.weights_path(key), key, partial(_weights_problem, hidden=hidden, dtype=dtype, norm=norm)
        )
        return None if stored is None else [(w, b) for w, b in stored["params"]]

    def get_norm_weights(self, key: str, hidden, dtype: str) -> list[tuple[torch.Tensor, torch.Tensor]] | None:
        """A norm model's stored (gain [out], bias [out]) per hidden layer, or None as `get_weights`."""
        stored = self._load(
            self.weights_path(key), key, partial(_weights_problem, hidden=hidden, dtype=dtype, norm="layer")
        )
        return None if stored is None else [(g, b) for g, b in stored["norm_params"]]

    def put_weights(self, key: str, params, norm_params=None) -> None:
        """Store a model's trained weights (on the CPU) under its result's key, and its norm's where it has one."""
        cpu = {"params": [[w.detach().cpu(), b.detach().cpu()] for w, b in params]}
        if norm_params is not None:
            cpu["norm_params"] = [[g.detach().cpu(), b.detach().cpu()] for g, b in norm_params]
        with files.atomic_path(self.weights_path(key)) as tmp:
            torch.save({**cpu, "store_key": key}, tmp)

    def state_path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.state.pt"

    def get_state(self, key: str, check: Callable[[dict], str | None] | None = None) -> dict | None:
        """The stored training state, or None when absent, unreadable or refused by `check` (which returns why
        a state does not fit the cell, or None when it does): then the cell trains from the start."""
        return self._load(self.state_path(key), key, check)

    def _load(self, path: Path, key: str, check: Callable[[dict], str | None] | None) -> dict | None:
        """A torch file of the store stored under `key` and passing `check`, else None (a refusal is logged)."""
        try:
            stored = torch.load(path, weights_only=True)
        except FileNotFoundError:
            return None
        except (OSError, RuntimeError, ValueError, EOFError, pickle.UnpicklingError) as e:
            return self._refused(path, f"it cannot be read as a torch file ({type(e).__name__})")
        if not isinstance(stored, dict) or stored.get("store_key") != key:
            return self._refused(path, "it is not stored under its key")
        problem = check(stored) if check else None
        return self._refused(path, problem) if problem else stored

    def put_state(self, key: str, state: dict) -> None:
        with files.atomic_path(self.state_path(key)) as tmp:
            torch.save({**state, "store_key": key}, tmp)

    def _refused(self, path: Path, why: str) -> None:
        then = "the cell trains from the start" if path.name.endswith(".state.pt") else self.refused_then
        log.warning("store entry %s not used: %s; %s", path, why, then)
        return None
