"""Preprocessed splits read back as tables (genboost.data.preprocess's CSVs), without torch: what the tables and
reports need of a split (its labels' variance) costs no torch import in their processes."""

from __future__ import annotations

import numpy as np
import pandas as pd

from genboost.errors import DataError


def read_features(path) -> pd.DataFrame:
    """Header and float64 values; pandas' parser reads each written value back exactly."""
    try:
        table = pd.read_csv(path, dtype=np.float64)
    except (OSError, ValueError) as e:
        raise DataError(f"cannot read {path} as a preprocess output: {e}") from None
    if list(table.columns[-1:]) != ["label"]:
        raise DataError(f"{path} is not a preprocess output: expected feature columns, then 'label', then rows")
    return table


def label_variance(split_csv) -> float:
    """The population variance (ddof 0, as an MSE is a mean over the rows) of a preprocessed split's labels, in
    the units the models are trained and scored in (an ordinal label's classes 0..K-1)."""
    labels = read_features(split_csv)["label"].to_numpy(np.float64)
    return float(labels.var())
