"""Turn a verified raw CSV into train/test features, as its `datasets:` entry says (genboost.config.datasets).

Feature order (train.csv, test.csv and manifest["features"]): the entry's `columns` (else the file's header)
in that order, less the label and the `drop` columns; a numeric column gives one feature named after it, as
the CSV gives it (scale "none") or standardized with the train split's mean and population std (scale
"standard"); a categorical column gives one 0/1 feature per category of the entry, in that order, named
"<column>=<category>". The last CSV column is `label`: an ordinal label's class 0..K-1 in the entry's
`label.order`, or a numeric label's value. Fetching the CSV: genboost.data.download.
"""

from __future__ import annotations

import logging
from contextlib import ExitStack

import numpy as np
import pandas as pd

from genboost.config.datasets import Dataset
from genboost.data.dataset import read_checked
from genboost.errors import DataError
from genboost.files import atomic_path, write_json, write_text

log = logging.getLogger(__name__)

SCALES = ("none", "standard")


def preprocess(
    raw_csv,
    out_train,
    out_test,
    out_manifest,
    dataset: Dataset | dict,
    test_fraction,
    split_seed,
    scale="none",
    source: str | None = None,
) -> dict:
    """Check the raw CSV (against the entry's `sha256` if it has one), split it (stratified on an ordinal
    label's classes, or a numeric label's quantile bins), encode and scale it; write train/test CSVs and the
    manifest, which is returned. `dataset` is a Dataset or a `datasets:` entry with its `name`. All three outputs
    appear together or not at all. `source`: the file the user gave, which raw_csv copies
    (genboost.data.dataset.read_checked)."""
    if isinstance(dataset, dict):
        dataset = Dataset.from_config(dataset["name"], dataset)
    _check_settings(test_fraction, scale)
    table, kept, source_sha256 = read_checked(raw_csv, dataset, source)
    labels = _labels(table[dataset.label], dataset)
    train_idx, test_idx, split = _split(raw_csv, labels, dataset, test_fraction, split_seed)
    features, scaler = _encode(table, kept, dataset, train_idx, scale)
    manifest = {
        "dataset": dataset.name,
        "features": list(features.columns),
        "scale": scale,
        "scaler": scaler,
        "categories": {c: list(dataset.categories[c]) for c in kept if c in dataset.categories},
        "label_column": dataset.label,
        "label_order": list(dataset.order) if dataset.order is not None else None,
        "rows": {"train": len(train_idx), "test": len(test_idx), "total": len(labels)},
        "label_counts": _label_counts(labels, dataset, train_idx, test_idx),
        "source_sha256": source_sha256,
        "drop_columns": list(dataset.drop),
        "test_fraction": test_fraction,
        "split_seed": split_seed,
        "split": split,
    }
    # Each file is renamed into place only once all three are written, so an error leaves none.
    with ExitStack() as stack:
        for out, idx in ((out_train, train_idx), (out_test, test_idx)):
            write_text(stack.enter_context(atomic_path(out)), _features_csv(features, labels, idx))
        write_json(stack.enter_context(atomic_path(out_manifest)), manifest)
    log.info("wrote %d train and %d test rows, %d features", len(train_idx), len(test_idx), features.shape[1])
    return manifest


def _check_settings(test_fraction: float, scale: str) -> None:
    if not 0 < test_fraction < 1:
        raise DataError(f"preprocess.test_fraction must lie strictly between 0 and 1, got {test_fraction!r}")
    if scale not in SCALES:
        raise DataError(f"preprocess.scale must be one of {SCALES}, got {scale!r}")


def _labels(column: pd.Series, dataset: Dataset) -> np.ndarray:
    """An ordinal label's classes as 0..K-1 (int64), or a numeric label's values (float64)."""
    if dataset.order is None:
        return column.to_numpy(np.float64)
    absent = [c for c in dataset.order if not column.eq(c).any()]
    if absent:  # allowed (a subset of a larger study), but worth saying: it may be a misspelt class
        log.warning("no row has the class(es) %s of config key %s", absent, dataset.key("label", "order"))
    return column.map({name: i for i, name in enumerate(dataset.order)}).to_numpy(np.int64)


def _label_counts(labels: np.ndarray, dataset: Dataset, train_idx, test_idx) -> dict | None:
    if dataset.order is None:
        return None
    k = len(dataset.order)
    return {
        name: np.bincount(labels[idx], minlength=k).tolist() for name, idx in (("train", train_idx), ("test", test_idx))
    }


QUANTILE_BINS = 10  # a numeric label is stratified on (at most) this many quantile bins of its values


def _strata(labels: np.ndarray, dataset: Dataset, test_fraction: float) -> tuple[np.ndarray, dict]:
    """What the split stratifies on, and how (the manifest's `split`): an ordinal label's classes; a numeric
    label's quantile bins (pd.qcut; tied values share a bin), as many as leave each bin two rows and the test
    split a row per bin, so that train and test labels spread alike."""
    if dataset.order is not None:
        return labels, {"method": "stratified", "on": "label classes"}
    n = len(labels)
    bins = min(QUANTILE_BINS, n // 2, int(n * test_fraction), n - int(np.ceil(n * test_fraction)))
    while bins > 1:
        codes = pd.qcut(labels, bins, labels=False, duplicates="drop")
        if np.bincount(codes).min() >= 2:
            return codes, {"method": "stratified", "on": "label quantile bins", "bins": int(codes.max()) + 1}
        bins -= 1
    return None, {"method": "random", "on": None}  # too few rows or distinct values to bin


def _split(raw_csv, labels: np.ndarray, dataset: Dataset, test_fraction: float, split_seed: int):
    """Train and test row indices and how they were drawn (`_strata`)."""
    from sklearn.model_selection import train_test_split

    stratify, how = _strata(labels, dataset, test_fraction)
    try:
        train, test = train_test_split(
            np.arange(len(labels)), test_size=test_fraction, random_state=split_seed, stratify=stratify
        )
    except ValueError as e:
        raise DataError(f"cannot split {raw_csv} ({how['method']}) with test_fraction {test_fraction}: {e}") from None
    return train, test, how


def _encode(
    table: pd.DataFrame, kept: list[str], dataset: Dataset, train_idx: np.ndarray, scale: str
) -> tuple[pd.DataFrame, dict | None]:
    """All rows' features in the order of the module docstring, and the scaler's train statistics (or None).

    Numeric features are float64; one-hot features are int64, so they print as 0 and 1. The transformers
    are fitted on the train rows only; with the categories given, the one-hot encoder learns nothing from them.
    """
    from sklearn.compose import ColumnTransformer
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    categories = dataset.categories
    numeric = [c for c in kept if c not in categories]
    categorical = [c for c in kept if c in categories]
    one_hot = OneHotEncoder(
        categories=[list(categories[c]) for c in categorical],
        dtype=np.int64,
        sparse_output=False,
        feature_name_combiner=lambda col, cat: f"{col}={cat}",
    )
    numbers = StandardScaler() if scale == "standard" else "passthrough"
    encoder = ColumnTransformer(
        [("numeric", numbers, numeric), ("one_hot", one_hot, categorical)], verbose_feature_names_out=False
    ).set_output(transform="pandas")
    features = encoder.fit(table.iloc[train_idx]).transform(table)
    names = [n for c in kept for n in ([f"{c}={cat}" for cat in categories[c]] if c in categories else [c])]
    if scale != "standard":
        return features[names], None
    fitted = encoder.named_transformers_["numeric"]
    stats = {
        c: {"mean": float(m), "std": float(s)} for c, m, s in zip(numeric, fitted.mean_, fitted.scale_, strict=True)
    }
    return features[names], stats


def _features_csv(features: pd.DataFrame, labels: np.ndarray, idx: np.ndarray) -> str:
    """The rows `idx`, then the label. pandas writes a float64 as its shortest round-trip text (as repr()),
    so float64 runs read these very numbers and float32 runs the float32 nearest to them (one rounding)."""
    rows = features.iloc[idx].assign(label=labels[idx])
    return rows.to_csv(index=False, lineterminator="\n")
