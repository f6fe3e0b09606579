"""Datasets from config.yaml alone: a small CSV defined only in a `datasets:` entry, anes96, fair, and their
errors."""

from __future__ import annotations

import copy
import json

import numpy as np
import pandas as pd
import pytest
import yaml
from sklearn.model_selection import train_test_split
from workflow_helpers import REPO_ROOT, checked_config

from genboost import wiring
from genboost.analysis.tables import with_relative_mse
from genboost.config.study import Study
from genboost.data.preprocess import preprocess
from genboost.data.splits import label_variance
from genboost.data.tensors import load_split
from genboost.errors import ConfigError, DataError
from genboost.files import sha256_file

CONFIG = yaml.safe_load((REPO_ROOT / "config.yaml").read_text())
ANES96 = CONFIG["datasets"]["anes96"]
FAIR = CONFIG["datasets"]["fair"]

# A small CSV no code knows: ';'-separated, a categorical column with a rare category, an ordinal label
# (size) and a numeric one (weight); each entry drops the other label.
SMALL_ROWS = ["color;x;size;weight"] + [
    f"{'red' if i % 3 else 'blue'};{i / 4};{('S', 'M', 'L')[i % 3]};{1.5 * i}" for i in range(29)
] + ["green;7.25;M;44.5"]  # fmt: skip
SMALL = {
    "url": "https://example.org/small.csv",
    "sha256": "0" * 64,  # replaced by the file's own in `small_csv`
    "sep": ";",
    "categorical": {"color": ["red", "blue", "green"]},
}
ORDINAL = {**SMALL, "label": {"column": "size", "order": ["S", "M", "L"]}, "drop": ["weight"]}
NUMERIC = {**SMALL, "label": {"column": "weight"}, "drop": ["size"]}


@pytest.fixture
def small_csv(tmp_path):
    path = tmp_path / "small.csv"
    path.write_text("\n".join(SMALL_ROWS) + "\n")
    return path


def study_with(datasets: dict, **experiment) -> Study:
    """The real config.yaml with these datasets and one experiment (the tiny grid) on the first of them."""
    config = copy.deepcopy(CONFIG)
    config["datasets"] = {**config["datasets"], **datasets}
    spec = {"optimizers": ["sgd"], "lrs": [1e-3], "wds": [0], "rhos": [0], "seeds": [0], **experiment}
    config["experiments"] = {"mine": {"dataset": next(iter(datasets)), **spec}}
    return Study.from_config(checked_config(config))


def run_study_preprocessing(study: Study, raw, out) -> dict:
    """Preprocess as the Snakefile's preprocess rule does: with the experiment's settings."""
    (settings,) = study.preprocessings().values()
    out.mkdir(exist_ok=True)
    return preprocess(raw, out / "train.csv", out / "test.csv", out / "manifest.json", **settings)


def test_a_csv_with_an_ordinal_label_needs_only_a_config_entry(small_csv, tmp_path):
    study = study_with({"small": {**ORDINAL, "sha256": sha256_file(small_csv)}})
    assert wiring.raw_path("small", ORDINAL) == "resources/small/small.csv"
    # without url: the local copy's file name (a zip's member where given)
    assert wiring.raw_path("small", {"url": None, "local_copy": "/home/me/mine.csv"}) == "resources/small/mine.csv"
    assert wiring.raw_path("small", {"local_copy": "data/x.csv", "member": "y.csv"}) == "resources/small/y.csv"
    manifest = run_study_preprocessing(study, small_csv, tmp_path / "out")
    assert manifest["features"] == ["color=red", "color=blue", "color=green", "x"]
    counts = manifest["label_counts"]
    assert manifest["label_order"] == ["S", "M", "L"] and sum(counts["train"]) == 24
    assert [a + b for a, b in zip(counts["train"], counts["test"], strict=True)] == [10, 11, 9]
    train, test = (pd.read_csv(tmp_path / "out" / f"{s}.csv") for s in ("train", "test"))
    both = pd.concat([train, test])
    blue_or_red = both[both["color=green"] == 0]  # x = i / 4 and size = i % 3 (S, M, L: 0, 1, 2)
    assert (blue_or_red["label"] == (blue_or_red["x"] * 4).astype(int) % 3).all()
    assert both.loc[both["color=green"] == 1, "label"].tolist() == [1]  # M
    assert (blue_or_red["color=blue"] == (blue_or_red["label"] == 0)).all()  # blue where i % 3 == 0
    split = load_split(tmp_path / "out" / "train.csv", tmp_path / "out" / "test.csv")
    assert split.classes == 3


def test_a_numeric_label_is_split_on_its_quantile_bins_and_has_no_classes(small_csv, tmp_path):
    study = study_with({"small": {**NUMERIC, "sha256": sha256_file(small_csv)}})
    manifest = run_study_preprocessing(study, small_csv, tmp_path / "out")
    assert manifest["label_order"] is None and manifest["label_counts"] is None
    # 6 test rows of 30: 6 bins of 5 rows, one test row from each
    assert manifest["split"] == {"method": "stratified", "on": "label quantile bins", "bins": 6}
    labels = np.sort(pd.read_csv(tmp_path / "out" / "test.csv")["label"].to_numpy())
    all_labels = np.sort(np.r_[1.5 * np.arange(29), 44.5])
    assert np.searchsorted(all_labels, labels).tolist() == [5 * k + i for k, i in enumerate(
        np.searchsorted(all_labels, labels) % 5)], "one test row per sixth of the labels"  # fmt: skip
    assert manifest["features"] == ["color=red", "color=blue", "color=green", "x"]
    both = pd.concat([pd.read_csv(tmp_path / "out" / f"{s}.csv") for s in ("train", "test")])
    blue_or_red = both[both["color=green"] == 0]  # weight = 1.5 i = 6 x
    assert (blue_or_red["label"] == blue_or_red["x"] * 6).all() and len(both) == 30
    assert both.loc[both["color=green"] == 1, "label"].tolist() == [44.5]
    assert load_split(tmp_path / "out" / "train.csv", tmp_path / "out" / "test.csv").classes is None
    test = pd.read_csv(tmp_path / "out" / "test.csv")["label"]
    assert label_variance(tmp_path / "out" / "test.csv") == pytest.approx(((test - test.mean()) ** 2).mean())


def test_a_numeric_label_with_ties_splits_with_the_same_spread_in_train_and_test(tmp_path):
    """A count label, mostly zeros (as doctor visits are): the quantile bins of tied values merge, and the two
    splits' label variances come out alike where a plain split of the same seed makes them differ by a third."""
    rng = np.random.default_rng(0)
    weights = np.where(rng.random(300) < 0.7, 0, rng.poisson(4, 300))
    path = tmp_path / "counts.csv"
    path.write_text("\n".join(["color;x;size;weight", *(f"red;{i};S;{w}" for i, w in enumerate(weights))]) + "\n")
    study = study_with({"small": {**NUMERIC, "sha256": sha256_file(path)}}, preprocess={"split_seed": 11})
    manifest = run_study_preprocessing(study, path, tmp_path / "out")
    assert manifest["split"] == {"method": "stratified", "on": "label quantile bins", "bins": 3}  # ties merged
    train, test = (pd.read_csv(tmp_path / "out" / f"{s}.csv")["label"] for s in ("train", "test"))
    assert test.var(ddof=0) / train.var(ddof=0) == pytest.approx(1, abs=0.1)
    plain_train, plain_test = train_test_split(weights, test_size=0.2, random_state=11)
    assert plain_test.var() / plain_train.var() < 0.7, "the plain split this replaces"


def test_an_ordinal_label_is_split_on_its_classes(small_csv, tmp_path):
    study = study_with({"small": {**ORDINAL, "sha256": sha256_file(small_csv)}})
    manifest = run_study_preprocessing(study, small_csv, tmp_path / "out")
    assert manifest["split"] == {"method": "stratified", "on": "label classes"}


def test_relative_mse_is_test_mse_over_the_test_labels_variance():
    cells = pd.DataFrame({"experiment": ["e"] * 3, "test_mse": [0.5, 2.0, float("nan")], "train_mse": [0.1] * 3})
    out = with_relative_mse(cells, 4.0)
    assert list(out.columns) == ["experiment", "test_mse", "test_mse_rel", "train_mse"]
    assert out["test_mse_rel"].tolist()[:2] == [0.125, 0.5] and pd.isna(out["test_mse_rel"].iloc[2])
    for unknown in (None, 0.0):  # no variance given, or constant test labels: nothing to scale by
        assert with_relative_mse(cells, unknown)["test_mse_rel"].isna().all()


def test_changing_a_dataset_entry_changes_only_its_split_folder():
    base = study_with({"small": ORDINAL})
    assert base.experiments[0].dataset == "small"
    other = study_with({"small": {**ORDINAL, "drop": ["weight", "x"]}})
    moved = study_with({"small": {**ORDINAL, "url": "https://example.org/elsewhere/small.csv"}})
    assert other.experiments[0].data_id != base.experiments[0].data_id == moved.experiments[0].data_id
    # the numbers 0..2 and the strings "0".."2" are one label order (the CSV holds text)
    ints = study_with({"small": {**ORDINAL, "label": {"column": "size", "order": [0, 1, 2]}}})
    texts = study_with({"small": {**ORDINAL, "label": {"column": "size", "order": ["0", "1", "2"]}}})
    assert ints.experiments[0].data_id == texts.experiments[0].data_id


@pytest.mark.parametrize("name", ["anes96", "fair"])
def test_the_default_experiments_run_on_obesity_and_the_other_datasets_are_off(name):
    study = Study.from_config(checked_config(copy.deepcopy(CONFIG)))
    assert {e.dataset for e in study.experiments} == {"obesity"}
    other = CONFIG["experiments"][name]
    assert (other["enabled"], other["dataset"], other["reference_experiment"]) == (False, name, "none")
    main = CONFIG["experiments"]["main"]
    assert all(other[k] == main[k] for k in ("optimizers", "lrs", "wds", "rhos", "seeds"))


def test_the_tiny_study_has_config_yamls_datasets():
    tiny = yaml.safe_load((REPO_ROOT / "tests/configs/tiny.yaml").read_text())["datasets"]
    for name, entry in CONFIG["datasets"].items():
        assert {**tiny[name], "url": None} == {**entry, "url": None}, name


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda c: c["experiments"]["main"].update(dataset="nope"), ["experiments.main.dataset", "'nope'"]),
        (lambda c: c["datasets"]["anes96"].update(drop=["vote", "PID"]), ["datasets.anes96", "label column 'PID'"]),
        (lambda c: c["datasets"]["anes96"].update(categorical={"educ": [1, 2]}, drop=["educ"]), ["['educ']"]),
        (lambda c: c["datasets"]["anes96"].update(drop=["votes"]), ["datasets.anes96.columns", "['votes']"]),
        (lambda c: c["datasets"]["anes96"]["label"].update(order=[0, "0", 1]), ["anes96.label.order", "twice"]),
    ],
    ids=["unknown-dataset", "label-dropped", "categorical-dropped", "not-a-column", "duplicate-class"],
)
def test_config_errors_name_the_key(change, expected):
    config = copy.deepcopy(CONFIG)
    change(config)
    with pytest.raises(ConfigError) as err:
        Study.from_config(checked_config(config))
    assert all(fragment in str(err.value) for fragment in expected), str(err.value)


def shipped_rows(name: str, csv) -> list[list[str]]:
    """The fields of a dataset that comes with the config, split by its entry's separator."""
    return [line.split(CONFIG["datasets"][name].get("sep", ",")) for line in csv.read_text().splitlines()]


def write_shipped(name: str, path, rows) -> None:
    sep = CONFIG["datasets"][name].get("sep", ",")
    path.write_text("".join(sep.join(r) + "\n" for r in rows))


def run_shipped(name: str, raw, out, sha256=None) -> dict:
    out.mkdir(exist_ok=True)
    dataset = {**CONFIG["datasets"][name], "name": name, "sha256": sha256}
    args = {"test_fraction": 0.2, "split_seed": 0}
    return preprocess(raw, out / "train.csv", out / "test.csv", out / "manifest.json", dataset, **args)


def assert_refused_naming(name: str, rows, tmp_path, expected: list[str]) -> None:
    """The changed rows are refused with an error naming the file and every fragment of `expected`, and leave
    no output."""
    bad = tmp_path / "bad.csv"
    write_shipped(name, bad, rows)
    with pytest.raises(DataError) as err:
        run_shipped(name, bad, tmp_path / "out")
    assert str(bad) in str(err.value) and all(fragment in str(err.value) for fragment in expected), str(err.value)
    assert list((tmp_path / "out").iterdir()) == []


def assert_checksum_refused(name: str, rows, tmp_path) -> None:
    """Valid rows of other content than the entry's sha256 are refused, naming both checksums and the key."""
    write_shipped(name, tmp_path / "raw.csv", rows)
    sha256 = CONFIG["datasets"][name]["sha256"]
    with pytest.raises(DataError) as err:
        run_shipped(name, tmp_path / "raw.csv", tmp_path / "out", sha256=sha256)
    message = str(err.value)
    assert all(s in message for s in ("checksum mismatch", sha256, f"datasets.{name}.sha256"))
    assert sha256_file(tmp_path / "raw.csv") in message


def test_anes96_preprocesses_as_its_entry_says(anes96_csv, tmp_path):
    manifest = run_shipped("anes96", anes96_csv, tmp_path / "out", sha256=ANES96["sha256"])
    assert manifest["features"] == ["popul", "TVnews", "selfLR", "ClinLR", "DoleLR", "age", "educ", "income"]
    assert manifest["rows"]["total"] == 944 and manifest["label_order"] == [str(k) for k in range(7)]
    counts = [a + b for a, b in zip(manifest["label_counts"]["train"], manifest["label_counts"]["test"], strict=True)]
    assert counts == [200, 180, 108, 37, 94, 150, 175]  # shared/data/README.md
    assert json.loads((tmp_path / "out" / "manifest.json").read_text())["source_sha256"] == ANES96["sha256"]
    assert load_split(tmp_path / "out" / "train.csv", tmp_path / "out" / "test.csv").classes == 7


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda rows: rows[5].__setitem__(5, "9"), ["'PID'", "data row 5 (line 6)", "'9'", "anes96.label.order"]),
        (lambda rows: rows[7].__setitem__(2, "left"), ["'selfLR'", "data row 7 (line 8)", "not a number: 'left'"]),
        (lambda rows: [r.pop(7) for r in rows], ["missing column(s) ['educ']", "datasets.anes96.columns"]),
        (lambda rows: rows[0].__setitem__(9, "'votes'"), ["unexpected column 'votes'", "datasets.anes96.columns"]),
    ],
    ids=["unknown-class", "not-a-number", "missing-column", "unexpected-column"],
)  # fmt: skip
def test_anes96_errors_name_file_row_column_value_and_key(anes96_csv, tmp_path, change, expected):
    rows = shipped_rows("anes96", anes96_csv)
    change(rows)
    assert_refused_naming("anes96", rows, tmp_path, expected)


def test_anes96_with_another_checksum_is_refused(anes96_csv, tmp_path):
    rows = shipped_rows("anes96", anes96_csv)
    rows[1][6] = "37"  # an age: still a valid file, only the checksum can tell
    assert_checksum_refused("anes96", rows, tmp_path)


def test_fair_preprocesses_as_its_entry_says(fair_csv, tmp_path):
    manifest = run_shipped("fair", fair_csv, tmp_path / "out", sha256=FAIR["sha256"])
    codes = [str(k) for k in range(1, 7)]
    one_hot = {c: [f"{c}={k}" for k in codes] for c in ("occupation", "occupation_husb")}
    numeric = ["age", "yrs_married", "children", "religious", "educ"]
    assert manifest["features"] == [*numeric, *one_hot["occupation"], *one_hot["occupation_husb"]]
    assert manifest["categories"] == {c: codes for c in one_hot} and manifest["drop_columns"] == ["affairs"]
    assert manifest["rows"]["total"] == 6366 and manifest["label_order"] == ["1", "2", "3", "4", "5"]
    counts = [a + b for a, b in zip(manifest["label_counts"]["train"], manifest["label_counts"]["test"], strict=True)]
    assert counts == [99, 348, 993, 2242, 2684]  # shared/data/README.md
    # each row's one-hot columns say its code, and the label is rate_marriage - 1; rows are matched on what is
    # left of the raw file after the split's shuffle by the multiset of (code, code, label) triples
    both = pd.concat([pd.read_csv(tmp_path / "out" / f"{s}.csv") for s in ("train", "test")])
    raw = pd.read_csv(fair_csv)
    for column, names in one_hot.items():
        assert (both[names].sum(axis=1) == 1).all()
        decoded = both[names].to_numpy().argmax(axis=1) + 1
        assert sorted(decoded) == sorted(raw[column]), column
    assert sorted(both["label"]) == sorted(raw["rate_marriage"] - 1)
    assert load_split(tmp_path / "out" / "train.csv", tmp_path / "out" / "test.csv").classes == 5


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda rows: rows[3].__setitem__(6, "7"), ["'occupation'", "data row 3 (line 4)", "unknown category '7'",
                                                     "datasets.fair.categorical.occupation"]),
        (lambda rows: rows[9].__setitem__(7, "2.0"), ["'occupation_husb'", "data row 9", "'2.0'",
                                                      "datasets.fair.categorical.occupation_husb"]),
        (lambda rows: rows[4].__setitem__(0, "6"), ["'rate_marriage'", "'6'", "datasets.fair.label.order"]),
    ],
    ids=["unknown-occupation", "code-written-as-float", "unknown-rating"],
)  # fmt: skip
def test_fair_bad_codes_name_file_row_column_value_and_key(fair_csv, tmp_path, change, expected):
    rows = shipped_rows("fair", fair_csv)
    change(rows)
    assert_refused_naming("fair", rows, tmp_path, expected)


def test_fair_with_another_checksum_is_refused(fair_csv, tmp_path):
    rows = shipped_rows("fair", fair_csv)
    rows[1][6] = "3"  # another valid occupation code: only the checksum can tell
    assert_checksum_refused("fair", rows, tmp_path)
