"""A dataset's raw CSV read and checked against its `datasets:` entry (genboost.config.datasets.Dataset).

The file's bytes are checked against the entry's sha256, then every field before any is used: the header
against the entry's columns, each categorical field and the label against the entry's categories and classes,
each numeric field for a finite number. An error names the file, the column, the data row and its line, and
the config key that says what is allowed.
"""

from __future__ import annotations

import hashlib
import io
import math
from pathlib import Path

import numpy as np
import pandas as pd

from genboost.config.datasets import Dataset
from genboost.errors import DataError


def read_checked(raw_csv, dataset: Dataset, source: str | None = None) -> tuple[pd.DataFrame, list[str], str]:
    """The raw CSV as a table (float64 numeric columns, str categorical ones and an ordinal label), its feature
    columns in feature order, and the SHA-256 of the bytes read (refused if the entry's `sha256` differs).
    `source`: the file the user gave (the entry's local_copy or url), which raw_csv is a verified copy of; the
    errors about its content name it, the file the user can open and fix."""
    data, sha256 = _read_bytes(raw_csv, dataset)
    shown = f"{source} (copied to {raw_csv})" if source and source != str(raw_csv) else raw_csv
    return (*_parse(shown, data, dataset), sha256)


def _read_bytes(raw_csv, dataset: Dataset) -> tuple[bytes, str]:
    """The download rule's check covers only the file it wrote; a CSV put at that path by hand is checked here.
    Parsing these very bytes means the manifest's checksum describes exactly what was preprocessed."""
    try:
        data = Path(raw_csv).read_bytes()
    except OSError as e:
        raise DataError(f"cannot read {raw_csv}: {e.strerror}") from None
    actual = hashlib.sha256(data).hexdigest()
    expected = dataset.sha256
    if expected and actual != expected.lower():
        key = dataset.key("sha256")
        raise DataError(
            f"checksum mismatch for {raw_csv}: expected sha256 {expected} (config key {key}), got {actual}. "
            f"Delete {raw_csv} to download it again, or, if this file is the one to use, set {key} to {actual}"
        )
    return data, actual


def _parse(raw_csv, data: bytes, dataset: Dataset) -> tuple[pd.DataFrame, list[str]]:
    """Every field is read as text first: a float64 dtype would turn an empty field or 'nan' into NaN, and
    stop at 'twenty' without saying where, while the text lets the checks name the row. The header is read
    as a data row (header=None) because pandas would rename a duplicate column ("Age.1") otherwise."""
    try:
        rows = pd.read_csv(
            io.BytesIO(data),
            header=None,
            dtype=str,
            keep_default_na=False,
            skip_blank_lines=False,
            encoding="utf-8-sig",
            sep=dataset.sep,
            quotechar=dataset.quote,
        )
    except pd.errors.EmptyDataError:
        raise DataError(f"{raw_csv} is empty: expected a header and data rows") from None
    except ValueError as e:  # pandas' ParserError (e.g. a row with more fields than the header), bad UTF-8
        raise DataError(f"cannot read {raw_csv}: {str(e).strip()}") from None
    header = rows.iloc[0].tolist()
    _check_header(raw_csv, header, dataset)
    checked = [c for c in (dataset.columns or header) if c not in dataset.drop]  # dropped ones may hold anything
    text = rows.iloc[1:].set_axis(header, axis=1).reset_index(drop=True)[checked]
    if text.empty:
        raise DataError(f"{raw_csv} has a header but no data rows")
    _check_fields(raw_csv, text, dataset)
    table = text.copy()
    for col in checked:
        if dataset.allowed(col) is None:
            try:
                table[col] = text[col].astype(np.float64)  # str to float64 is Python's float(): exact
            except ValueError as e:  # rare text pandas' check takes but float() does not, e.g. '9E 6'
                raise DataError(f"{raw_csv}, column {col!r}: {e}") from None
    return table, dataset.features(header)


def _check_header(raw_csv, header: list[str], dataset: Dataset) -> None:
    for name in header:
        if header.count(name) > 1:
            raise DataError(f"{raw_csv}: column {name!r} appears {header.count(name)} times in the header")
        if dataset.columns is not None and name not in dataset.columns:
            raise DataError(
                f"{raw_csv}: unexpected column {name!r}; config key {dataset.key('columns')} expects exactly "
                f"{dataset.columns}"
            )
    named = {dataset.label: dataset.key("label", "column")}
    named |= {c: dataset.key("categorical", c) for c in dataset.categories}
    named |= {c: dataset.key("drop") for c in dataset.drop}
    missing = [c for c in dataset.columns or () if c not in header]
    if missing:
        raise DataError(
            f"{raw_csv}: missing column(s) {missing} (config key {dataset.key('columns')}); the header has {header}"
        )
    for column, key in named.items():  # the key the user wrote: label.column, not the whole entry
        if column not in header:
            raise DataError(f"{raw_csv}: no column {column!r} (config key {key}); the header has {header}")


def _check_fields(raw_csv, text: pd.DataFrame, dataset: Dataset) -> None:
    """Refuse the first data row (then the first column in feature order) holding a bad field."""
    bad = pd.DataFrame(
        {
            col: ~np.isfinite(pd.to_numeric(values, errors="coerce"))
            if dataset.allowed(col) is None
            else ~values.isin(dataset.allowed(col))
            for col, values in text.items()
        }
    )
    if not bad.to_numpy().any():
        return
    row = int(bad.any(axis=1).to_numpy().argmax())
    col = bad.columns[bad.iloc[row].to_numpy().argmax()]
    # Data row n is line n + 1 (the header is line 1) when the file has no quoted line breaks.
    where = f"{raw_csv}, column {col!r}, data row {row + 1} (line {row + 2})"
    raise DataError(f"{where}: {_what_is_wrong(dataset, col, text[col].iloc[row])}")


def _what_is_wrong(dataset: Dataset, col: str, value: str) -> str:
    if value == "":  # a short row's missing fields read as empty too
        return "missing value (empty field, or too few fields in the row)"
    allowed = dataset.allowed(col)
    if allowed is not None:
        return f"unknown category {value!r}; config key {dataset.allowed_key(col)} lists {allowed}"
    try:
        finite = math.isfinite(float(value))
    except ValueError:
        finite = True  # no number at all
    # A finite value pandas refused (e.g. '1_000', which float() takes) is not a plain number either.
    what = f"not a number: {value!r}" if finite else f"not a finite number: {value!r}"
    return f"{what} (a numeric column: config key {dataset.key('categorical')} does not list it)"
