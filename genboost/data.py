"""The obesity data (UCI 544): fetch the verified CSV, then turn it into standardized train/test features.

Feature order (train.csv, test.csv and manifest["features"]): the columns of `COLUMNS` in that order, less
the label and `drop_columns`; a numeric column gives one feature named after it, standardized with the
train split's mean and population std; a categorical column gives one 0/1 feature per category of
`CATEGORIES`, in that order, named "<column>=<category>". The last CSV column is `label`, the ordinal
class 0..6 in `LABEL_ORDER`. With the defaults (Weight dropped) there are 7 + 23 = 30 features.
"""

from __future__ import annotations

import csv
import hashlib
import io
import logging
import math
import zipfile
from contextlib import ExitStack
from pathlib import Path
from urllib.parse import urlparse
from urllib.request import url2pathname

import numpy as np

from genboost.files import atomic_path, sha256_file, write_bytes, write_json, write_text

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
DOWNLOAD_TIMEOUT_S = 60


class DataError(Exception):
    """Bad or unavailable input data; the message names the file or URL, the field and the value."""


def fetch(url: str, member: str, sha256: str, dest, local_copy=None) -> Path:
    """Write the verified CSV to `dest` (atomically): from `local_copy` if given, else from the zip at `url`."""
    dest = Path(dest)
    if local_copy:
        data = _read_file(Path(local_copy), "the local copy (data.local_copy)")
        _verify(data, sha256, str(local_copy))
    else:
        data = _member_of_zip(_download(url, member, dest), url, member)
        _verify(data, sha256, f"{member} in {url}")
    write_bytes(dest, data)
    log.info("wrote %s (%d bytes, sha256 %s)", dest, len(data), sha256)
    return dest


def _read_file(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as e:
        raise DataError(f"cannot read {what} {path}: {e.strerror}") from None


def _verify(data: bytes, expected: str, what: str) -> None:
    got = hashlib.sha256(data).hexdigest()
    if got != expected.lower():
        raise DataError(f"checksum mismatch for {what}: expected sha256 {expected}, got {got}")


def _download(url: str, member: str, dest: Path) -> bytes:
    """The zip's bytes, held in memory (it is small), so that a failed download leaves no file anywhere."""
    if url.startswith("file://"):
        return _read_file(Path(url2pathname(urlparse(url).path)), "the file of data.url,")
    # pooch's HTTPDownloader (requests, with a timeout) does the HTTP part; pooch.retrieve is not used
    # because its cache would keep a file on disk and we verify the member, not the zip.
    import pooch
    import requests

    log.info("downloading %s", url)
    buffer = io.BytesIO()
    try:
        pooch.HTTPDownloader(timeout=DOWNLOAD_TIMEOUT_S)(url, buffer, None)
    except requests.HTTPError as e:
        code = e.response.status_code if e.response is not None else "?"
        raise DataError(f"download failed for {url}: HTTP status {code}. {_offline_hint(url, member, dest)}") from None
    except (requests.ConnectionError, requests.Timeout) as e:
        reason = getattr(e.args[0], "reason", None) if e.args else None  # urllib3's cause, if any
        raise DataError(f"cannot reach {url} ({reason or e}). {_offline_hint(url, member, dest)}") from None
    except requests.RequestException as e:
        raise DataError(f"download of {url} broke off ({type(e).__name__}: {e}); try again") from None
    return buffer.getvalue()


def _offline_hint(url: str, member: str, dest: Path) -> str:
    return (
        f"Without network access: download {url} by other means, take {member} out of the zip, and either "
        f"set data.local_copy in config.yaml to that CSV's path or put it at {dest}."
    )


def _member_of_zip(zip_bytes: bytes, url: str, member: str) -> bytes:
    try:
        with zipfile.ZipFile(io.BytesIO(zip_bytes)) as zf:
            names = zf.namelist()
            # Accept the member inside a folder too, as long as only one entry has that name.
            matches = [n for n in names if n == member] or [n for n in names if n.rsplit("/", 1)[-1] == member]
            if len(matches) != 1:
                raise DataError(f"the zip at {url} has no single member {member!r}; it holds {names}")
            return zf.read(matches[0])
    except (zipfile.BadZipFile, EOFError, zipfile.LargeZipFile) as e:
        raise DataError(f"the file at {url} is not a valid zip (truncated or corrupt download?): {e}") from None


def preprocess(raw_csv, out_train, out_test, out_manifest, drop_columns, test_fraction, split_seed) -> dict:
    """Validate the raw CSV, split it stratified, encode and standardize; write train/test CSVs and the manifest.

    All three outputs appear together or not at all.
    """
    drop_columns = list(drop_columns)
    _check_settings(raw_csv, drop_columns, test_fraction)
    table = read_raw(raw_csv)
    labels = np.array([LABEL_ORDER.index(v) for v in table[LABEL]], dtype=np.int64)
    train_idx, test_idx = _split(raw_csv, labels, test_fraction, split_seed)
    kept = [c for c in COLUMNS if c != LABEL and c not in drop_columns]
    names, columns, scaler = _encode(table, kept, train_idx)
    manifest = {
        "features": names,
        "scaler": scaler,
        "categories": {c: list(CATEGORIES[c]) for c in kept if c in CATEGORIES},
        "label_column": LABEL,
        "label_order": list(LABEL_ORDER),
        "rows": {"train": len(train_idx), "test": len(test_idx), "total": len(labels)},
        "label_counts": {
            "train": np.bincount(labels[train_idx], minlength=7).tolist(),
            "test": np.bincount(labels[test_idx], minlength=7).tolist(),
        },
        "source_sha256": sha256_file(raw_csv),
        "drop_columns": drop_columns,
        "test_fraction": test_fraction,
        "split_seed": split_seed,
    }
    # Each file is renamed into place only once all three are written, so an error leaves none.
    with ExitStack() as stack:
        for out, idx in ((out_train, train_idx), (out_test, test_idx)):
            write_text(stack.enter_context(atomic_path(out)), _features_csv(names, columns, labels, idx))
        write_json(stack.enter_context(atomic_path(out_manifest)), manifest)
    log.info("wrote %d train and %d test rows, %d features", len(train_idx), len(test_idx), len(names))
    return manifest


def _encode(table: dict, kept: list[str], train_idx: np.ndarray) -> tuple[list[str], list[np.ndarray], dict]:
    """Feature names, feature columns over all rows, and the numeric columns' train mean and std.

    Numeric features are float64; one-hot features are int64, so they print as 0 and 1.
    """
    names, columns, scaler = [], [], {}
    for col in kept:
        values = table[col]
        if col in NUMERIC:
            mean, std = _train_stats(values[train_idx])
            scaler[col] = {"mean": mean, "std": std}
            names.append(col)
            columns.append((values - mean) / std)
        else:
            for cat in CATEGORIES[col]:
                names.append(f"{col}={cat}")
                columns.append((values == cat).astype(np.int64))
    return names, columns, scaler


def _check_settings(raw_csv, drop_columns: list, test_fraction: float) -> None:
    for name in drop_columns:
        if name not in COLUMNS:
            raise DataError(f"preprocess.drop_columns names {name!r}, which is not a column of {raw_csv}: {COLUMNS}")
        if name == LABEL:
            raise DataError(f"preprocess.drop_columns names the label column {LABEL!r}; it cannot be dropped")
    if not 0 < test_fraction < 1:
        raise DataError(f"preprocess.test_fraction must lie strictly between 0 and 1, got {test_fraction!r}")


def read_raw(raw_csv) -> dict[str, np.ndarray]:
    """The raw CSV's columns, by name: float64 arrays for numeric columns, str arrays for categorical ones."""
    try:
        with open(raw_csv, newline="", encoding="utf-8-sig") as f:
            reader = csv.reader(f)
            header = next(reader, None)
            index = _column_index(raw_csv, header)
            values = {c: [] for c in COLUMNS}
            for row in reader:
                n = reader.line_num - 1  # data rows counted from 1; the header is line 1
                if len(row) != len(header):
                    where = f"data row {n} (line {reader.line_num})"
                    raise DataError(f"{raw_csv}, {where}: expected {len(header)} fields, got {len(row)}: {row}")
                for col, i in index.items():
                    values[col].append(_parse(raw_csv, col, n, reader.line_num, row[i]))
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise DataError(f"cannot read {raw_csv}: {e}") from None
    if not values[LABEL]:
        raise DataError(f"{raw_csv} has a header but no data rows")
    return {c: np.array(v, dtype=np.float64 if c in NUMERIC else str) for c, v in values.items()}


def _column_index(raw_csv, header) -> dict[str, int]:
    if not header:
        raise DataError(f"{raw_csv} is empty: expected a header with columns {COLUMNS}")
    for name in header:
        if header.count(name) > 1:
            raise DataError(f"{raw_csv}: column {name!r} appears {header.count(name)} times in the header")
        if name not in COLUMNS:
            raise DataError(f"{raw_csv}: unexpected column {name!r}; expected exactly {COLUMNS}")
    missing = [c for c in COLUMNS if c not in header]
    if missing:
        raise DataError(f"{raw_csv}: missing column(s) {missing}; the header has {header}")
    return {c: header.index(c) for c in COLUMNS}


def _parse(raw_csv, col: str, n: int, line: int, value: str):
    where = f"{raw_csv}, column {col!r}, data row {n} (line {line})"
    if value == "":
        raise DataError(f"{where}: missing value (empty field)")
    if col in NUMERIC:
        try:
            number = float(value)
        except ValueError:
            raise DataError(f"{where}: not a number: {value!r}") from None
        if not math.isfinite(number):
            raise DataError(f"{where}: not a finite number: {value!r}")
        return number
    if value not in CATEGORIES[col]:
        raise DataError(f"{where}: unknown category {value!r}; expected one of {CATEGORIES[col]}")
    return value


def _split(raw_csv, labels: np.ndarray, test_fraction: float, split_seed: int):
    from sklearn.model_selection import train_test_split

    try:
        return train_test_split(
            np.arange(len(labels)), test_size=test_fraction, random_state=split_seed, stratify=labels
        )
    except ValueError as e:
        raise DataError(f"cannot split {raw_csv} stratified with test_fraction {test_fraction}: {e}") from None


def _train_stats(values: np.ndarray) -> tuple[float, float]:
    """Mean and population std (as sklearn's StandardScaler); a constant column keeps scale 1."""
    mean = float(np.mean(values))
    std = float(np.std(values))
    return mean, (std if std > 0 else 1.0)


def _features_csv(names: list[str], columns: list[np.ndarray], labels: np.ndarray, idx: np.ndarray) -> str:
    """The rows `idx`; repr() of a float64 reads back exactly, so float64 runs see these very numbers and
    float32 runs the float32 nearest to them (one rounding)."""
    lines = [",".join([*names, "label"])]
    for r in idx:
        lines.append(",".join([*(repr(col[r].item()) for col in columns), str(labels[r].item())]))
    return "\n".join(lines) + "\n"


def load_split(train_csv, test_csv, dtype=None):
    """Read preprocess's outputs as tensors: features [n, f] and labels [n] (float), both in `dtype`."""
    import torch  # here, not at the top: the download and preprocess jobs do not need torch

    from genboost.model import Split

    dtype = dtype or torch.float32
    (train_header, train), (test_header, test) = (_read_features(p) for p in (train_csv, test_csv))
    if train_header != test_header:
        raise DataError(f"{train_csv} and {test_csv} have different columns")
    tensors = []
    for table in (train, test):
        tensors += [torch.from_numpy(table[:, :-1]).to(dtype), torch.from_numpy(table[:, -1]).to(dtype)]
    return Split(*tensors)


def _read_features(path) -> tuple[list[str], np.ndarray]:
    """Header and float64 values; Python's float() reads each repr()'d value back exactly."""
    try:
        with open(path, newline="", encoding="utf-8") as f:
            header, *rows = csv.reader(f)
        table = np.array([[float(v) for v in row] for row in rows], dtype=np.float64)
    except (OSError, ValueError, csv.Error) as e:
        raise DataError(f"cannot read {path} as a preprocess output: {e}") from None
    if header[-1:] != ["label"] or table.ndim != 2 or table.shape[1] != len(header):
        raise DataError(f"{path} is not a preprocess output: expected feature columns, then 'label', then rows")
    return header, table
