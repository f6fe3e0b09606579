"""genboost.data.preprocess / load_split on the real CSV and on small copies changed to break one rule."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch

from genboost.data import CATEGORIES, LABEL, NUMERIC, DataError, load_split, preprocess
from genboost.files import sha256_file

DEFAULTS = {"drop_columns": ["Weight"], "test_fraction": 0.2, "split_seed": 0}
# The ordinal classes, lightest first: the study's definition, spelled out here so that a change to
# genboost.data.LABEL_ORDER is caught.
ORDINAL = [
    "Insufficient_Weight", "Normal_Weight", "Overweight_Level_I", "Overweight_Level_II",
    "Obesity_Type_I", "Obesity_Type_II", "Obesity_Type_III",
]  # fmt: skip
# Class counts of the real file, in that order (see shared/data/README.md).
CLASS_COUNTS = [272, 287, 290, 290, 351, 297, 324]
SHARED_ORDER = (
    "Age,Gender,Height,Weight,CALC,FAVC,FCVC,NCP,SCC,SMOKE,CH2O,"
    "family_history_with_overweight,FAF,TUE,CAEC,MTRANS,NObeyesdad"
).split(",")


def run(raw, out_dir, **overrides) -> dict:
    out_dir.mkdir(parents=True, exist_ok=True)
    args = {**DEFAULTS, **overrides}
    return preprocess(raw, out_dir / "train.csv", out_dir / "test.csv", out_dir / "manifest.json", **args)


def read_csv_exactly(path) -> pd.DataFrame:
    """Values as Python's float() reads them (exact for repr()'d floats, whatever the pandas version)."""
    header, *rows = [line.split(",") for line in path.read_text().splitlines()]
    return pd.DataFrame([[float(v) for v in row] for row in rows], columns=header)


def read(out_dir) -> tuple[pd.DataFrame, pd.DataFrame]:
    return tuple(read_csv_exactly(out_dir / f"{s}.csv") for s in ("train", "test"))


def rows_of(csv_path) -> list[list[str]]:
    """The raw CSV's fields (bytes decoded as is, so its CRLF line ends are kept in mind)."""
    return [line.split(",") for line in csv_path.read_bytes().decode("ascii").split("\r\n") if line]


def write_rows(path, rows) -> None:
    path.write_bytes("".join(",".join(r) + "\r\n" for r in rows).encode())


@pytest.fixture(scope="module")
def default_out(tmp_path_factory, obesity_csv):
    out = tmp_path_factory.mktemp("default")
    return out, run(obesity_csv, out)


def test_default_outputs_match_the_manifest(default_out, obesity_csv):
    out, manifest = default_out
    train, test = read(out)
    assert (len(train), len(test)) == (1688, 423)
    assert manifest["rows"] == {"train": 1688, "test": 423, "total": 2111}
    assert len(manifest["features"]) == 30
    assert list(train.columns) == list(test.columns) == [*manifest["features"], "label"]
    assert json.loads((out / "manifest.json").read_text()) == manifest
    assert manifest["source_sha256"] == sha256_file(obesity_csv)
    assert set(manifest["scaler"]) == set(NUMERIC) - {"Weight"}
    assert not any(name.startswith("Weight") for name in manifest["features"])
    assert manifest["label_order"] == ORDINAL
    assert (manifest["drop_columns"], manifest["test_fraction"], manifest["split_seed"]) == (["Weight"], 0.2, 0)


def test_column_order_does_not_change_outputs(default_out, obesity_csv, tmp_path):
    out, manifest = default_out
    rows = rows_of(obesity_csv)
    order = [rows[0].index(c) for c in SHARED_ORDER]
    shuffled = tmp_path / "reordered.csv"
    write_rows(shuffled, [[r[i] for i in order] for r in rows])
    other = run(shuffled, tmp_path / "out")
    for name in ("train.csv", "test.csv"):
        assert (tmp_path / "out" / name).read_bytes() == (out / name).read_bytes()
    assert other["source_sha256"] != manifest["source_sha256"]
    assert {**other, "source_sha256": None} == {**manifest, "source_sha256": None}


def _set(rows, data_row, column, value):
    rows[data_row][rows[0].index(column)] = value  # rows[0] is the header, so data row n is rows[n]


def _drop(rows, column):
    index = rows[0].index(column)
    for row in rows:
        del row[index]


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda rows: _set(rows, 5, "Gender", "Other"), ["'Gender'", "data row 5 (line 6)", "'Other'", "unknown"]),
        (lambda rows: _set(rows, 7, "Age", "twenty"), ["'Age'", "data row 7 (line 8)", "'twenty'", "not a number"]),
        (lambda rows: _set(rows, 9, "Height", ""), ["'Height'", "data row 9 (line 10)", "missing value"]),
        (lambda rows: _set(rows, 11, "FAF", "nan"), ["'FAF'", "data row 11 (line 12)", "'nan'", "finite"]),
        (lambda rows: _set(rows, 2111, LABEL, "Obese"), [f"'{LABEL}'", "data row 2111 (line 2112)", "'Obese'"]),
        (lambda rows: rows[3].pop(), ["data row 3 (line 4)", "expected 17 fields, got 16"]),
        (lambda rows: _drop(rows, "CALC"), ["missing column", "'CALC'"]),
        (lambda rows: rows[0].__setitem__(1, "Age_years"), ["unexpected column 'Age_years'"]),
    ],
    ids=["unknown-category", "non-numeric", "empty", "nan", "unknown-label", "short-row", "missing-col", "extra-col"],
)
def test_schema_errors_name_file_column_row_and_value(obesity_csv, tmp_path, change, expected):
    rows = rows_of(obesity_csv)
    change(rows)
    bad = tmp_path / "bad.csv"
    write_rows(bad, rows)
    out = tmp_path / "out"
    with pytest.raises(DataError) as err:
        run(bad, out)
    message = str(err.value)
    assert str(bad) in message
    for fragment in expected:
        assert fragment in message
    assert list(out.iterdir()) == [], "no output (nor temp file) may be left after an error"


@pytest.mark.parametrize(
    ("drop", "expected"), [(["Weight", "BMI"], "'BMI'"), ([LABEL], "label column")], ids=["unknown", "label"]
)
def test_bad_drop_columns_are_refused(obesity_csv, tmp_path, drop, expected):
    with pytest.raises(DataError, match=expected):
        run(obesity_csv, tmp_path / "out", drop_columns=drop)
    assert list((tmp_path / "out").iterdir()) == []


def test_dropping_nothing_keeps_weight(obesity_csv, tmp_path):
    manifest = run(obesity_csv, tmp_path / "out", drop_columns=[])
    assert len(manifest["features"]) == 31 and "Weight" in manifest["scaler"]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_rare_category_has_a_column_in_both_splits(obesity_csv, tmp_path, seed):
    run(obesity_csv, tmp_path / "out", split_seed=seed)
    train, test = read(tmp_path / "out")
    assert "CALC=Always" in train.columns and "CALC=Always" in test.columns
    assert train["CALC=Always"].sum() + test["CALC=Always"].sum() == 1
    assert len(train) + len(test) == 2111
    for column, categories in CATEGORIES.items():
        if column != LABEL:  # every one-hot group has exactly one 1 per row
            group = [f"{column}={c}" for c in categories]
            assert (train[group].sum(axis=1) == 1).all() and (test[group].sum(axis=1) == 1).all()


def test_standardization_uses_train_statistics_only(default_out, obesity_csv):
    out, manifest = default_out
    train, test = read(out)
    raw = pd.read_csv(obesity_csv)
    for column, stats in manifest["scaler"].items():
        assert abs(train[column].mean()) < 1e-12
        assert abs(train[column].std(ddof=0) - 1) < 1e-12
        # Undoing the scaling gives back the raw values, split between train and test.
        restored = np.sort(np.concatenate([train[column], test[column]]) * stats["std"] + stats["mean"])
        np.testing.assert_allclose(restored, np.sort(raw[column].to_numpy()), rtol=1e-12, atol=1e-12)
    assert max(abs(test[c].mean()) for c in manifest["scaler"]) > 1e-3, "test must not be scaled on its own"


def test_split_is_stratified(default_out):
    out, manifest = default_out
    train, test = read(out)
    train_counts = np.bincount(train["label"].astype(int), minlength=7)
    test_counts = np.bincount(test["label"].astype(int), minlength=7)
    assert (train_counts + test_counts).tolist() == CLASS_COUNTS
    assert np.all(np.abs(test_counts - 0.2 * np.array(CLASS_COUNTS)) < 1)
    assert manifest["label_counts"] == {"train": train_counts.tolist(), "test": test_counts.tolist()}


def test_labels_follow_the_ordinal_order(obesity_csv, tmp_path):
    # A small copy in which Age encodes the class: after preprocessing, Age must still match the label.
    rows = rows_of(obesity_csv)
    header, age, label = rows[0], rows[0].index("Age"), rows[0].index(LABEL)
    small = [header]
    for k, name in enumerate(ORDINAL):
        for row in [r for r in rows[1:] if r[label] == name][:4]:
            small.append([str(20 + k) if i == age else v for i, v in enumerate(row)])
    write_rows(tmp_path / "small.csv", small)
    manifest = run(tmp_path / "small.csv", tmp_path / "out", test_fraction=0.25)
    stats = manifest["scaler"]["Age"]
    for frame in read(tmp_path / "out"):
        np.testing.assert_allclose(frame["Age"] * stats["std"] + stats["mean"] - 20, frame["label"], atol=1e-9)
    assert manifest["rows"] == {"train": 21, "test": 7, "total": 28}


def test_runs_are_deterministic_and_seeded(default_out, obesity_csv, tmp_path):
    out, _ = default_out
    run(obesity_csv, tmp_path / "again")
    run(obesity_csv, tmp_path / "seed1", split_seed=1)
    for name in ("train.csv", "test.csv", "manifest.json"):
        assert (tmp_path / "again" / name).read_bytes() == (out / name).read_bytes()
    assert (tmp_path / "seed1" / "test.csv").read_bytes() != (out / "test.csv").read_bytes()


def test_load_split_reads_exact_values(default_out):
    out, _ = default_out
    train, test = read(out)
    s32 = load_split(out / "train.csv", out / "test.csv")
    s64 = load_split(out / "train.csv", out / "test.csv", dtype=torch.float64)
    assert s32.x_train.shape == (1688, 30) and s32.x_test.shape == (423, 30)
    assert s32.x_train.dtype == s32.y_train.dtype == torch.float32
    assert torch.equal(s64.x_train, torch.tensor(train.drop(columns="label").to_numpy(np.float64)))
    assert torch.equal(s64.y_test, torch.tensor(test["label"].to_numpy(np.float64)))
    assert torch.equal(s32.x_test, s64.x_test.to(torch.float32))
    assert set(s32.y_train.unique().tolist()) == set(range(7))


def test_load_split_refuses_mismatched_files(default_out, tmp_path):
    out, _ = default_out
    train, _ = read(out)
    train.drop(columns="Age").to_csv(tmp_path / "test.csv", index=False)
    with pytest.raises(DataError, match="different columns"):
        load_split(out / "train.csv", tmp_path / "test.csv")
