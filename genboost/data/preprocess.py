"""The obesity data (UCI 544): turn the verified raw CSV into train/test features (fetching it: genboost.data.download).

Feature order (train.csv, test.csv and manifest["features"]): the columns of `COLUMNS` in that order, less
the label and `drop_columns`; a numeric column gives one feature named after it, as the CSV gives it
(scale "none") or standardized with the train split's mean and population std (scale "standard"); a
categorical column gives one 0/1 feature per category of `CATEGORIES`, in that order, named
"<column>=<category>". The last CSV column is `label`, the ordinal class 0..6 in `LABEL_ORDER`. With the
defaults (Weight dropped) there are 7 + 23 = 30 features.
"""

from __future__ import annotations

import hashlib
import io
import logging
import math
from contextlib import ExitStack
from pathlib import Path

import numpy as np
import pandas as pd

from genboost.data.download import DataError  # raised here too; importable from either module
from genboost.files import atomic_path, write_json, write_text

log = logging.getLogger(__name__)

LABEL = "NObeyesdad"
LABEL_ORDER = (
    "Insufficient_Weight",
    "Normal_Weight",
    "Overweight_Level_I",
    "Overweight_Level_II",
    "Obesity_Type_I",
    "Obesity_Type_II",
    "Obesity_Type_III",
)
NUMERIC = ("Age", "Height", "Weight", "FCVC", "NCP", "CH2O", "FAF", "TUE")
# Every category up front, so that a rare one (CALC=Always occurs once) gets its column in both splits.
CATEGORIES = {
    "Gender": ("Female", "Male"),
    "family_history_with_overweight": ("no", "yes"),
    "FAVC": ("no", "yes"),
    "CAEC": ("no", "Sometimes", "Frequently", "Always"),
    "SMOKE": ("no", "yes"),
    "SCC": ("no", "yes"),
    "CALC": ("no", "Sometimes", "Frequently", "Always"),
    "MTRANS": ("Public_Transportation", "Automobile", "Walking", "Motorbike", "Bike"),
    LABEL: LABEL_ORDER,
}
COLUMNS = (
    "Gender", "Age", "Height", "Weight", "family_history_with_overweight", "FAVC", "FCVC", "NCP",
    "CAEC", "SMOKE", "CH2O", "SCC", "FAF", "TUE", "CALC", "MTRANS", LABEL,
)  # fmt: skip
SCALES = ("none", "standard")


def preprocess(
    raw_csv, out_train, out_test, out_manifest, drop_columns, test_fraction, split_seed, scale="none", sha256=None
) -> dict:
    """Check the raw CSV (against `sha256` if given), split it stratified, encode and scale it; write
    train/test CSVs and the manifest, which is returned. All three outputs appear together or not at all."""
    data, source_sha256 = _read_checked(raw_csv, sha256)
    drop_columns = list(drop_columns)
    _check_settings(raw_csv, drop_columns, test_fraction, scale)
    table = _parse_raw(raw_csv, data)
    labels = table[LABEL].map({name: i for i, name in enumerate(LABEL_ORDER)}).to_numpy(np.int64)
    train_idx, test_idx = _split(raw_csv, labels, test_fraction, split_seed)
    kept = [c for c in COLUMNS if c != LABEL and c not in drop_columns]
    features, scaler = _encode(table, kept, train_idx, scale)
    manifest = {
        "features": list(features.columns),
        "scale": scale,
        "scaler": scaler,
        "categories": {c: list(CATEGORIES[c]) for c in kept if c in CATEGORIES},
        "label_column": LABEL,
        "label_order": list(LABEL_ORDER),
        "rows": {"train": len(train_idx), "test": len(test_idx), "total": len(labels)},
        "label_counts": {
            "train": np.bincount(labels[train_idx], minlength=7).tolist(),
            "test": np.bincount(labels[test_idx], minlength=7).tolist(),
        },
        "source_sha256": source_sha256,
        "drop_columns": drop_columns,
        "test_fraction": test_fraction,
        "split_seed": split_seed,
    }
    # Each file is renamed into place only once all three are written, so an error leaves none.
    with ExitStack() as stack:
        for out, idx in ((out_train, train_idx), (out_test, test_idx)):
            write_text(stack.enter_context(atomic_path(out)), _features_csv(features, labels, idx))
        write_json(stack.enter_context(atomic_path(out_manifest)), manifest)
    log.info("wrote %d train and %d test rows, %d features", len(train_idx), len(test_idx), features.shape[1])
    return manifest


def _read_checked(raw_csv, sha256: str | None) -> tuple[bytes, str]:
    """The raw CSV's bytes and their SHA-256; refused if `sha256` is given and differs.

    The download rule's check covers only the file it wrote; a CSV put at that path by hand is checked here.
    Parsing these very bytes means the manifest's checksum describes exactly what was preprocessed.
    """
    try:
        data = Path(raw_csv).read_bytes()
    except OSError as e:
        raise DataError(f"cannot read {raw_csv}: {e.strerror}") from None
    actual = hashlib.sha256(data).hexdigest()
    if sha256 and actual != sha256.lower():
        raise DataError(
            f"checksum mismatch for {raw_csv}: expected sha256 {sha256} (config key data.sha256), got {actual}. "
            f"Delete {raw_csv} to download it again, or, if this file is the one to use, set data.sha256 to {actual}"
        )
    return data, actual


def _check_settings(raw_csv, drop_columns: list, test_fraction: float, scale: str) -> None:
    for name in drop_columns:
        if name not in COLUMNS:
            raise DataError(f"preprocess.drop_columns names {name!r}, which is not a column of {raw_csv}: {COLUMNS}")
        if name == LABEL:
            raise DataError(f"preprocess.drop_columns names the label column {LABEL!r}; it cannot be dropped")
    if not 0 < test_fraction < 1:
        raise DataError(f"preprocess.test_fraction must lie strictly between 0 and 1, got {test_fraction!r}")
    if scale not in SCALES:
        raise DataError(f"preprocess.scale must be one of {SCALES}, got {scale!r}")


def _parse_raw(raw_csv, data: bytes) -> pd.DataFrame:
    """The raw CSV as a table: float64 numeric columns, str categorical ones, in `COLUMNS` order.

    Every field is read as text first: a float64 dtype would turn an empty field or 'nan' into NaN, and
    stop at 'twenty' without saying where, while the text lets the checks name the row. The header is read
    as a data row (header=None) because pandas would rename a duplicate column ("Age.1") otherwise.
    """
    try:
        rows = pd.read_csv(
            io.BytesIO(data),
            header=None,
            dtype=str,
            keep_default_na=False,
            skip_blank_lines=False,
            encoding="utf-8-sig",
        )
    except pd.errors.EmptyDataError:
        raise DataError(f"{raw_csv} is empty: expected a header with columns {COLUMNS}") from None
    except ValueError as e:  # pandas' ParserError (e.g. a row with more fields than the header), bad UTF-8
        raise DataError(f"cannot read {raw_csv}: {str(e).strip()}") from None
    header = rows.iloc[0].tolist()
    _check_header(raw_csv, header)
    text = rows.iloc[1:].set_axis(header, axis=1).reset_index(drop=True)[list(COLUMNS)]
    if text.empty:
        raise DataError(f"{raw_csv} has a header but no data rows")
    _check_fields(raw_csv, text)
    table = text.copy()
    for col in NUMERIC:
        try:
            table[col] = text[col].astype(np.float64)  # str to float64 is Python's float(): exact
        except ValueError as e:  # rare text pandas' check takes but float() does not, e.g. '9E 6'
            raise DataError(f"{raw_csv}, column {col!r}: {e}") from None
    return table


def _check_header(raw_csv, header: list[str]) -> None:
    for name in header:
        if header.count(name) > 1:
            raise DataError(f"{raw_csv}: column {name!r} appears {header.count(name)} times in the header")
        if name not in COLUMNS:
            raise DataError(f"{raw_csv}: unexpected column {name!r}; expected exactly {COLUMNS}")
    missing = [c for c in COLUMNS if c not in header]
    if missing:
        raise DataError(f"{raw_csv}: missing column(s) {missing}; the header has {header}")


def _check_fields(raw_csv, text: pd.DataFrame) -> None:
    """Refuse the first data row (then the first column in `COLUMNS` order) holding a bad field."""
    bad = pd.DataFrame(
        {
            col: ~np.isfinite(pd.to_numeric(values, errors="coerce"))
            if col in NUMERIC
            else ~values.isin(CATEGORIES[col])
            for col, values in text.items()
        }
    )
    if not bad.to_numpy().any():
        return
    row = int(bad.any(axis=1).to_numpy().argmax())
    col = bad.columns[bad.iloc[row].to_numpy().argmax()]
    # Data row n is line n + 1 (the header is line 1): the file has no quoted line breaks.
    where = f"{raw_csv}, column {col!r}, data row {row + 1} (line {row + 2})"
    raise DataError(f"{where}: {_what_is_wrong(col, text[col].iloc[row])}")


def _what_is_wrong(col: str, value: str) -> str:
    if value == "":  # a short row's missing fields read as empty too
        return "missing value (empty field, or too few fields in the row)"
    if col in CATEGORIES:
        return f"unknown category {value!r}; expected one of {CATEGORIES[col]}"
    try:
        finite = math.isfinite(float(value))
    except ValueError:
        finite = True  # no number at all
    # A finite value pandas refused (e.g. '1_000', which float() takes) is not a plain number either.
    return f"not a number: {value!r}" if finite else f"not a finite number: {value!r}"


def _split(raw_csv, labels: np.ndarray, test_fraction: float, split_seed: int):
    from sklearn.model_selection import train_test_split

    try:
        return train_test_split(
            np.arange(len(labels)), test_size=test_fraction, random_state=split_seed, stratify=labels
        )
    except ValueError as e:
        raise DataError(f"cannot split {raw_csv} stratified with test_fraction {test_fraction}: {e}") from None


def _encode(
    table: pd.DataFrame, kept: list[str], train_idx: np.ndarray, scale: str
) -> tuple[pd.DataFrame, dict | None]:
    """All rows' features in the order of the module docstring, and the scaler's train statistics (or None).

    Numeric features are float64; one-hot features are int64, so they print as 0 and 1. The transformers
    are fitted on the train rows only; with the categories given, the one-hot encoder learns nothing from them.
    """
    from sklearn.compose import ColumnTransformer
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    numeric = [c for c in kept if c in NUMERIC]
    categorical = [c for c in kept if c in CATEGORIES]
    one_hot = OneHotEncoder(
        categories=[list(CATEGORIES[c]) for c in categorical],
        dtype=np.int64,
        sparse_output=False,
        feature_name_combiner=lambda col, cat: f"{col}={cat}",
    )
    numbers = StandardScaler() if scale == "standard" else "passthrough"
    encoder = ColumnTransformer(
        [("numeric", numbers, numeric), ("one_hot", one_hot, categorical)], verbose_feature_names_out=False
    ).set_output(transform="pandas")
    features = encoder.fit(table.iloc[train_idx]).transform(table)
    names = [n for c in kept for n in ([c] if c in NUMERIC else [f"{c}={cat}" for cat in CATEGORIES[c]])]
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
