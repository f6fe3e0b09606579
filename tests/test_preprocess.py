"""genboost.data.preprocess.preprocess / load_split on the real CSV and on small copies changed to break one rule."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from sklearn.model_selection import train_test_split

from genboost.data.preprocess import preprocess
from genboost.data.tensors import load_split
from genboost.errors import DataError
from genboost.files import sha256_file

OBESITY = yaml.safe_load((Path(__file__).parent.parent / "config.yaml").read_text())["datasets"]["obesity"]
LABEL = OBESITY["label"]["column"]
CATEGORIES = OBESITY["categorical"]
NUMERIC = [c for c in OBESITY["columns"] if c != LABEL and c not in CATEGORIES]
DEFAULTS = {"test_fraction": 0.2, "split_seed": 0}
# What preprocessing wrote before datasets came from config.yaml (computed with that code): the SHA-256 of
# the default split's train.csv and test.csv, unscaled and standardized. Training on other bytes would change
# every result of the study.
PINNED_SHA256 = {
    "none": (
        "3142bd18503017c4c4aef9b37a26f2185792272907101bc9b82d9f001f3fba60",
        "6103d15b02a1abe6b1d5a615cc97f81ece39d06b2e32b9ffda5713c3a07cdee2",
    ),
    "standard": (
        "a776506570be79ab9e66cdf696a6e966311bab79d8d410f969f2614646b7d8f1",
        "daafc785e1eed9e2d68261e564c6b3fad80362936558b3f26b057cc82141b6c1",
    ),
}
PINNED_FEATURES = (
    "Gender=Female,Gender=Male,Age,Height,family_history_with_overweight=no,family_history_with_overweight=yes,"
    "FAVC=no,FAVC=yes,FCVC,NCP,CAEC=no,CAEC=Sometimes,CAEC=Frequently,CAEC=Always,SMOKE=no,SMOKE=yes,CH2O,"
    "SCC=no,SCC=yes,FAF,TUE,CALC=no,CALC=Sometimes,CALC=Frequently,CALC=Always,MTRANS=Public_Transportation,"
    "MTRANS=Automobile,MTRANS=Walking,MTRANS=Motorbike,MTRANS=Bike"
).split(",")
# The ordinal classes, lightest first: the study's definition, spelled out here so that a change to
# config.yaml's datasets.obesity.label.order is caught.
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
KEPT_NUMERIC = [c for c in NUMERIC if c != "Weight"]


def run(raw, out_dir, sha256=None, drop=("Weight",), **overrides) -> dict:
    """Preprocess with config.yaml's obesity entry (`sha256`, if given, and `drop` changed) and settings."""
    out_dir.mkdir(parents=True, exist_ok=True)
    dataset = {**OBESITY, "name": "obesity", "sha256": sha256, "drop": list(drop)}
    args = {**DEFAULTS, **overrides}
    return preprocess(raw, out_dir / "train.csv", out_dir / "test.csv", out_dir / "manifest.json", dataset, **args)


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


def raw_table(csv_path) -> pd.DataFrame:
    """The raw CSV's fields as text, read without genboost's (or pandas') parser."""
    header, *rows = rows_of(csv_path)
    return pd.DataFrame(rows, columns=header)


def split_indices(raw: pd.DataFrame, test_fraction=0.2, seed=0) -> tuple[np.ndarray, np.ndarray]:
    """Train and test row indices as train_test_split gives them when called directly (as the old code did)."""
    labels = [ORDINAL.index(v) for v in raw[LABEL]]
    return train_test_split(np.arange(len(raw)), test_size=test_fraction, random_state=seed, stratify=labels)


def numbers(raw: pd.DataFrame, column: str, idx: np.ndarray) -> np.ndarray:
    return np.array([float(v) for v in raw[column].iloc[idx]])


@pytest.fixture(scope="module")
def default_out(tmp_path_factory, obesity_csv):
    out = tmp_path_factory.mktemp("default")
    return out, run(obesity_csv, out, sha256=sha256_file(obesity_csv))


@pytest.fixture(scope="module")
def standard_out(tmp_path_factory, obesity_csv):
    out = tmp_path_factory.mktemp("standard")
    return out, run(obesity_csv, out, scale="standard")


def test_default_outputs_match_the_manifest(default_out, obesity_csv):
    out, manifest = default_out
    train, test = read(out)
    assert (len(train), len(test)) == (1688, 423)
    assert manifest["rows"] == {"train": 1688, "test": 423, "total": 2111}
    assert len(manifest["features"]) == 30
    assert list(train.columns) == list(test.columns) == [*manifest["features"], "label"]
    assert json.loads((out / "manifest.json").read_text()) == manifest
    assert manifest["source_sha256"] == sha256_file(obesity_csv)
    assert (manifest["scale"], manifest["scaler"]) == ("none", None)
    assert not any(name.startswith("Weight") for name in manifest["features"])
    assert manifest["label_order"] == ORDINAL and manifest["dataset"] == "obesity"
    assert (manifest["drop_columns"], manifest["test_fraction"], manifest["split_seed"]) == (["Weight"], 0.2, 0)


@pytest.mark.parametrize("scale", ["none", "standard"])
def test_obesity_preprocesses_to_the_bytes_it_always_did(default_out, standard_out, scale):
    out, manifest = default_out if scale == "none" else standard_out
    assert (sha256_file(out / "train.csv"), sha256_file(out / "test.csv")) == PINNED_SHA256[scale]
    assert manifest["features"] == PINNED_FEATURES


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


def test_unscaled_features_are_the_raw_rows_of_the_old_split(default_out, obesity_csv):
    # scale "none": each numeric feature is the CSV's number, each one-hot group marks the CSV's category,
    # and the rows are those train_test_split picks when called directly, in its order.
    out, manifest = default_out
    raw = raw_table(obesity_csv)
    for frame, idx in zip(read(out), split_indices(raw), strict=True):
        for column in KEPT_NUMERIC:
            assert np.array_equal(frame[column].to_numpy(), numbers(raw, column, idx)), column
        for column, categories in manifest["categories"].items():
            for category in categories:
                expected = (raw[column].iloc[idx] == category).to_numpy(np.float64)
                assert np.array_equal(frame[f"{column}={category}"].to_numpy(), expected)
        assert frame["label"].tolist() == [ORDINAL.index(v) for v in raw[LABEL].iloc[idx]]


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
        (lambda rows: _set(rows, 11, "FAF", "nan"), ["'FAF'", "data row 11 (line 12)", "'nan'", "not a finite"]),
        (lambda rows: _set(rows, 13, "TUE", "1e999"), ["'TUE'", "data row 13 (line 14)", "'1e999'", "not a finite"]),
        (lambda rows: _set(rows, 15, "NCP", "+9E 6"), ["'NCP'", "'+9E 6'"]),  # pandas takes it, float() not
        (lambda rows: _set(rows, 2111, LABEL, "Obese"), [f"'{LABEL}'", "data row 2111 (line 2112)", "'Obese'"]),
        (lambda rows: rows[3].pop(), [f"'{LABEL}'", "data row 3 (line 4)", "missing value", "too few fields"]),
        (lambda rows: rows[4].append("1"), ["line 5", "saw 18"]),
        (lambda rows: _drop(rows, "CALC"), ["missing column", "'CALC'"]),
        (lambda rows: rows[0].__setitem__(1, "Age_years"), ["unexpected column 'Age_years'"]),
        (lambda rows: rows[0].__setitem__(1, "Gender"), ["column 'Gender' appears 2 times"]),
        (lambda rows: rows.__delitem__(slice(1, None)), ["has a header but no data rows"]),
        (lambda rows: rows.clear(), ["is empty"]),
    ],
    ids=[
        "unknown-category", "non-numeric", "empty", "nan", "infinite", "odd-number", "unknown-label", "short-row",
        "long-row", "missing-col", "extra-col", "duplicate-col", "no-rows", "empty-file",
    ],
)  # fmt: skip
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


def test_the_first_bad_row_is_named(obesity_csv, tmp_path):
    rows = rows_of(obesity_csv)
    _set(rows, 30, "Age", "x")
    _set(rows, 12, "MTRANS", "Boat")  # a later column, but an earlier row
    _set(rows, 12, "TUE", "y")  # the same row, an earlier column
    write_rows(tmp_path / "bad.csv", rows)
    with pytest.raises(DataError, match=r"column 'TUE', data row 12 \(line 13\): not a number: 'y'"):
        run(tmp_path / "bad.csv", tmp_path / "out")


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"drop": ["Weight", "BMI"]}, ["no column 'BMI'", "config key datasets.obesity.drop"]),
        ({"test_fraction": 1.0}, ["preprocess.test_fraction", "1.0"]),
        ({"scale": "minmax"}, ["preprocess.scale", "'minmax'"]),
    ],
    ids=["unknown-drop", "test-fraction", "scale"],
)
def test_bad_settings_are_refused(obesity_csv, tmp_path, overrides, expected):
    with pytest.raises(DataError) as err:
        run(obesity_csv, tmp_path / "out", **overrides)
    assert all(fragment in str(err.value) for fragment in expected)
    assert list((tmp_path / "out").iterdir()) == []


def test_a_misspelled_label_names_the_users_file_and_the_label_key(obesity_csv, tmp_path):
    """The error names the file the user gave (not its copy in resources/) and the key they wrote."""
    dataset = {**OBESITY, "name": "obesity", "sha256": None, "label": {"column": "NObeyesdat"}}
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(DataError) as err:
        preprocess(obesity_csv, out / "train.csv", out / "test.csv", out / "m.json", dataset, **DEFAULTS,
                   source="/home/me/obesity.csv")  # fmt: skip
    message = str(err.value)
    assert message.startswith(f"/home/me/obesity.csv (copied to {obesity_csv}): no column 'NObeyesdat'"), message
    assert "(config key datasets.obesity.label.column)" in message


def test_tampered_raw_csv_is_refused_naming_both_checksums(obesity_csv, tmp_path):
    rows = rows_of(obesity_csv)
    _set(rows, 1, "Age", "22")  # still a valid CSV: only the checksum can tell
    tampered = tmp_path / "raw.csv"
    write_rows(tampered, rows)
    expected, actual = sha256_file(obesity_csv), sha256_file(tampered)
    with pytest.raises(DataError) as err:
        run(tampered, tmp_path / "out", sha256=expected)
    message = str(err.value)
    for fragment in (str(tampered), expected, actual, "datasets.obesity.sha256", "Delete"):
        assert fragment in message
    assert list((tmp_path / "out").iterdir()) == []
    run(tampered, tmp_path / "out", sha256=actual.upper())  # the right checksum, in either case, is accepted


def test_dropping_nothing_keeps_weight(obesity_csv, tmp_path):
    manifest = run(obesity_csv, tmp_path / "out", drop=[], scale="standard")
    assert len(manifest["features"]) == 31 and "Weight" in manifest["features"] and "Weight" in manifest["scaler"]


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


def test_standard_scaling_uses_the_train_rows_mean_and_std(standard_out, default_out, obesity_csv):
    # StandardScaler's mean and variance may differ from np.mean / np.std in the last bits, hence the
    # tight tolerances rather than bit equality (on this file they happen to agree exactly).
    out, manifest = standard_out
    raw = raw_table(obesity_csv)
    (train, test), (train_idx, test_idx) = read(out), split_indices(raw)
    assert (manifest["scale"], set(manifest["scaler"])) == ("standard", set(KEPT_NUMERIC))
    for column in KEPT_NUMERIC:
        train_raw = numbers(raw, column, train_idx)
        mean, std = np.mean(train_raw), np.std(train_raw)
        assert manifest["scaler"][column] == pytest.approx({"mean": mean, "std": std}, rel=1e-14)
        np.testing.assert_allclose(train[column], (train_raw - mean) / std, rtol=0, atol=1e-12)
        np.testing.assert_allclose(test[column], (numbers(raw, column, test_idx) - mean) / std, rtol=0, atol=1e-12)
        assert abs(train[column].mean()) < 1e-12 and abs(train[column].std(ddof=0) - 1) < 1e-12
    assert max(abs(test[c].mean()) for c in KEPT_NUMERIC) > 1e-3, "test must not be scaled on its own"
    unscaled, _ = read(default_out[0])  # the rest of the features is the same whether scaled or not
    assert train.drop(columns=KEPT_NUMERIC).equals(unscaled.drop(columns=KEPT_NUMERIC))


def test_scaler_statistics_come_from_train_rows_only(standard_out, obesity_csv, tmp_path):
    _, manifest = standard_out
    train_idx, test_idx = split_indices(raw_table(obesity_csv))
    stats = {}
    for name, row in (("test_row", test_idx[0]), ("train_row", train_idx[0])):
        rows = rows_of(obesity_csv)
        _set(rows, row + 1, "Age", "99")  # data row n + 1 is row index n; the labels, so the split, stay
        write_rows(tmp_path / f"{name}.csv", rows)
        stats[name] = run(tmp_path / f"{name}.csv", tmp_path / name, scale="standard")["scaler"]
    assert stats["test_row"] == manifest["scaler"]
    assert stats["train_row"]["Age"] != manifest["scaler"]["Age"]
    assert {**stats["train_row"], "Age": None} == {**manifest["scaler"], "Age": None}


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
    for frame in read(tmp_path / "out"):
        assert (frame["Age"] - 20).tolist() == frame["label"].tolist()
    assert manifest["rows"] == {"train": 21, "test": 7, "total": 28}


def test_runs_are_deterministic_and_seeded(default_out, obesity_csv, tmp_path):
    out, _ = default_out
    run(obesity_csv, tmp_path / "again", sha256=sha256_file(obesity_csv))
    run(obesity_csv, tmp_path / "seed1", split_seed=1)
    for name in ("train.csv", "test.csv", "manifest.json"):
        assert (tmp_path / "again" / name).read_bytes() == (out / name).read_bytes()
    assert (tmp_path / "seed1" / "test.csv").read_bytes() != (out / "test.csv").read_bytes()


def test_written_features_read_back_as_the_same_float64(obesity_csv, tmp_path):
    # Ages with 17 significant digits, extremes and subnormals pass through scale "none" unchanged, so the
    # written features (and load_split in float64) must give back the very numbers of the raw CSV.
    rows = rows_of(obesity_csv)
    rng = np.random.default_rng(0)
    ages = rng.standard_normal(len(rows) - 1) * 10.0 ** rng.integers(-300, 300, len(rows) - 1)
    ages[:6] = [5e-324, 2.2250738585072014e-308, 1.7976931348623157e308, 0.1 + 0.2, 1e16, -0.0]
    for n, age in enumerate(ages, start=1):
        _set(rows, n, "Age", repr(float(age)))
    write_rows(tmp_path / "raw.csv", rows)
    run(tmp_path / "raw.csv", tmp_path / "out")
    indices = split_indices(raw_table(tmp_path / "raw.csv"))
    split = load_split(tmp_path / "out" / "train.csv", tmp_path / "out" / "test.csv", dtype=torch.float64)
    frames = read(tmp_path / "out")
    age = frames[0].columns.get_loc("Age")
    for frame, x, idx in zip(frames, (split.x_train, split.x_test), indices, strict=True):
        expected = ages[idx].view(np.int64)  # bit patterns: -0.0 must stay -0.0
        assert np.array_equal(frame["Age"].to_numpy().view(np.int64), expected)
        assert np.array_equal(x[:, age].numpy().view(np.int64), expected)


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
