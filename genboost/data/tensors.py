"""Preprocessed data as tensors: the split, read back from preprocess's CSVs (genboost.data.preprocess)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from genboost.data.splits import read_features
from genboost.errors import DataError

# The one permutation of the training labels in the random-label control.
LABEL_SHUFFLE_SEED = 0x1ABE1


@dataclass
class Split:
    """Preprocessed data as tensors: features [n, f] and labels [n] (float); `classes` is the number K of an
    ordinal label's classes 0..K-1 (accuracy rounds predictions into that range), None for a numeric label."""

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    classes: int | None = None

    def with_shuffled_labels(self, seed: int = LABEL_SHUFFLE_SEED) -> Split:
        """The random-label control: training labels permuted once (the same for every cell), test labels kept."""
        perm = torch.randperm(len(self.y_train), generator=torch.Generator().manual_seed(seed))
        return Split(self.x_train, self.y_train[perm], self.x_test, self.y_test, self.classes)

    def to(self, device=None, dtype=None) -> Split:
        tensors = (self.x_train, self.y_train, self.x_test, self.y_test)
        return Split(*(t.to(device=device, dtype=dtype) for t in tensors), self.classes)


def load_split(train_csv, test_csv, dtype=None):
    """Read preprocess's outputs as tensors: features [n, f] and labels [n] (float), both in `dtype`; the label's
    classes from the manifest.json beside train.csv."""
    dtype = dtype or torch.float32
    train, test = (read_features(p) for p in (train_csv, test_csv))
    if list(train.columns) != list(test.columns):
        raise DataError(f"{train_csv} and {test_csv} have different columns")
    tensors = []
    for table in (train.to_numpy(np.float64), test.to_numpy(np.float64)):
        tensors += [torch.from_numpy(table[:, :-1]).to(dtype), torch.from_numpy(table[:, -1]).to(dtype)]
    return Split(*tensors, classes=label_classes(Path(train_csv).with_name("manifest.json")))


def label_classes(manifest_path) -> int | None:
    """The number of an ordinal label's classes in preprocess's manifest; None for a numeric label."""
    try:
        manifest = json.loads(Path(manifest_path).read_text())
        order = manifest["label_order"]
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise DataError(f"cannot read the label's classes from {manifest_path} (rerun preprocess): {e}") from None
    return len(order) if order is not None else None
