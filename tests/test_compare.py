"""Our tables beside a published one: loading and checking the reference, matching, agreement, the report files."""

import json
import math

import numpy as np
import pandas as pd
import pytest
from compare_helpers import cells_frame

from genboost.analysis import tables
from genboost.compare.agreement import (
    agreement,
    compare_configurations,
    load_published,
    published_rows,
)
from genboost.compare.conclusions import REPRODUCED, RULE, evaluate_published
from genboost.compare.report import grid_cells, write_vs_talk
from genboost.data.splits import label_variance
from genboost.errors import PublishedTableError


def reference_frame(cells: pd.DataFrame, experiment="main") -> pd.DataFrame:
    """The talk's numbers: our means (in optimizer, rho, lr, wd order) moved by `shift` (so ours - talk is -shift),
    one configuration dropped, one added."""
    means = cells.groupby(["optimizer", "rho", "lr", "wd"], as_index=False)["test_mse"].mean()
    shift = np.resize([0.03, -0.05, 0.01, 0.08, -0.02], len(means))
    ref = means.assign(experiment=experiment, mean_test_mse=means["test_mse"] + shift).drop(columns="test_mse")
    ref = ref[~((ref["optimizer"] == "sgd") & (ref["rho"] == 0.05) & (ref["lr"] == 1e-3) & (ref["wd"] == 0))]
    extra = dict(experiment=experiment, optimizer="adam", rho=0.05, lr=2e-2, wd=0.0, mean_test_mse=1.7)
    return pd.concat([ref, pd.DataFrame([extra])], ignore_index=True)[
        ["experiment", "optimizer", "rho", "lr", "wd", "mean_test_mse"]
    ]


def write_reference(path, ref: pd.DataFrame, lr_text: dict | None = None) -> str:
    """Write `ref` as CSV text; lr_text rewrites chosen lrs (e.g. 3e-5 as "0.00003")."""
    text = ref.assign(lr=[(lr_text or {}).get(lr, repr(lr)) for lr in ref["lr"]]).to_csv(index=False)
    path.write_text(text)
    return str(path)


def ranks(x: np.ndarray) -> np.ndarray:
    return np.argsort(np.argsort(x)).astype(float)  # the fixture's values have no ties


def test_agreement_numbers_recomputed_independently():
    cells = cells_frame()
    ref = reference_frame(cells)
    comp = compare_configurations(cells, ref)
    agree = agreement(comp)
    both = comp[comp["side"] == "both"]
    ours, talk = both["ours_mean"].to_numpy(), both["talk_mean"].to_numpy()
    overall = agree.iloc[-1]
    assert overall["optimizer"] == "all" and overall["compared"] == len(both) == 23
    assert overall["pearson"] == pytest.approx(np.corrcoef(ours, talk)[0, 1])
    assert overall["spearman"] == pytest.approx(np.corrcoef(ranks(ours), ranks(talk))[0, 1])
    assert overall["mad"] == pytest.approx(sum(abs(o - t) for o, t in zip(ours, talk, strict=True)) / len(ours))
    table = agree[(agree["optimizer"] == "adam") & (agree["rho"] == 0.0)].iloc[0]
    sel = both[(both["optimizer"] == "adam") & (both["rho"] == 0.0)]
    assert table["compared"] == 6
    assert table["pearson"] == pytest.approx(np.corrcoef(sel["ours_mean"], sel["talk_mean"])[0, 1])
    assert table["mad"] == pytest.approx((sel["ours_mean"] - sel["talk_mean"]).abs().mean())
    one = both[(both["optimizer"] == "sgd") & (both["rho"] == 0) & (both["lr"] == 3e-3) & (both["wd"] == 1e-4)]
    expected = cells.query("optimizer == 'sgd' and rho == 0 and lr == 3e-3 and wd == 1e-4")["test_mse"].mean()
    assert one["ours_mean"].item() == pytest.approx(expected) and one["diff"].item() == pytest.approx(-0.01)


def test_configurations_on_one_side_only_are_counted_not_failed():
    cells = cells_frame()
    comp = compare_configurations(cells, reference_frame(cells))
    assert (comp["side"] == "ours only").sum() == 1 and (comp["side"] == "talk only").sum() == 1
    only = comp[comp["side"] != "both"].set_index("side")
    assert (only.loc["ours only", "optimizer"], only.loc["ours only", "lr"]) == ("sgd", 1e-3)
    assert (only.loc["talk only", "lr"], only.loc["talk only", "talk_mean"]) == (2e-2, 1.7)
    agree = agreement(comp).set_index(["optimizer", "rho"])
    assert agree.loc[("sgd", 0.05), "ours_only"] == 1 and agree.loc[("adam", 0.05), "talk_only"] == 1
    assert agree.loc[("sgd", 0.05), "compared"] == 5 and agree.loc[("all", "all"), "ours_only"] == 1


def test_a_diverged_configuration_is_left_out_of_the_agreement():
    cells = cells_frame()
    hit = (cells["optimizer"] == "adam") & (cells["rho"] == 0) & (cells["lr"] == 1e-3) & (cells["wd"] == 0)
    cells.loc[hit & (cells["seed"] == 1), ["test_mse", "diverged"]] = [math.nan, True]
    comp = compare_configurations(cells, reference_frame(cells.fillna(1.0)))
    row = comp[(comp["optimizer"] == "adam") & (comp["rho"] == 0) & (comp["lr"] == 1e-3) & (comp["wd"] == 0)]
    assert math.isnan(row["ours_mean"].item()) and row["diverged_seeds"].item() == 1
    overall = agreement(comp).iloc[-1]
    assert overall["diverged"] == 1 and overall["compared"] == 22


def test_numbers_match_however_they_are_written(tmp_path):
    cells = cells_frame()
    path = write_reference(tmp_path / "ref.csv", reference_frame(cells), lr_text={3e-5: "0.00003", 3e-3: "3e-3"})
    assert "0.00003" in (tmp_path / "ref.csv").read_text()
    comp = compare_configurations(cells, published_rows(load_published(path), "main"))
    low = comp[comp["lr"] == 3e-5]
    assert len(low) == 8 and (low["side"] == "both").all()
    assert (comp["side"] == "talk only").sum() == 1 and (comp["side"] == "ours only").sum() == 1


HEADER = "experiment,optimizer,rho,lr,wd,mean_test_mse"
GOOD = ["main,adam,0,3e-3,1e-4,0.85", "main,sgd,0.05,1e-3,0,1.3"]


@pytest.mark.parametrize(
    "lines, says",
    [
        (["experiment,optimizer,rho,lr,mean_test_mse", "main,adam,0,3e-3,0.85"], "missing ['wd']"),
        ([HEADER + ",seed", "main,adam,0,3e-3,1e-4,0.85,0"], "unexpected ['seed']"),
        ([HEADER, GOOD[0], "main,adamw,0,1e-3,0,1.3"], "row 2 (line 3): unknown optimizer 'adamw'"),
        ([HEADER, GOOD[0], "main,sgd,0,fast,0,1.3"], "row 2 (line 3): lr must be a finite number, got 'fast'"),
        (
            [HEADER, "main,sgd,0,1e-3,0,inf", GOOD[0]],
            "row 1 (line 2): mean_test_mse must be a finite number, got 'inf'",
        ),
        ([HEADER, GOOD[0], "main,sgd,0,1e-3,,1.3"], "row 2 (line 3): wd must be a finite number, got ''"),
        ([HEADER, GOOD[0], "main,sgd,nan,1e-3,0,1.3"], "row 2 (line 3): rho must be a finite number, got 'nan'"),
        ([HEADER, GOOD[0], "main,sgd,0,-1e-3,0,1.3"], "row 2 (line 3): lr must be >= 0, got '-1e-3'"),
        ([HEADER, *GOOD, "main,adam,0.0,0.003,0.0001,0.9"], "row 3 (line 4): duplicate configuration"),
        ([HEADER, ",adam,0,3e-3,1e-4,0.85"], "row 1 (line 2): experiment is empty"),
    ],
)
def test_load_reference_names_file_row_and_value(tmp_path, lines, says):
    path = tmp_path / "bad.csv"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(PublishedTableError) as err:
        load_published(path)
    assert str(path) in str(err.value) and says in str(err.value)


def test_load_reference_types_and_unknown_experiment(tmp_path):
    path = tmp_path / "ref.csv"
    path.write_text("\n".join([HEADER, *GOOD]) + "\n")
    ref = load_published(path)
    assert list(ref["lr"]) == [3e-3, 1e-3] and ref["mean_test_mse"].dtype == float and ref["rho"].dtype == float
    with pytest.raises(PublishedTableError, match=r"no rows for reference_experiment 'second_chance'.*\['main'\]"):
        published_rows(ref, "second_chance")
    assert str(path) in str(pytest.raises(PublishedTableError, published_rows, ref, "x").value)


def test_shipped_talk_tables_load_and_say_what_the_talk_says(repo_root):
    ref = load_published(repo_root / "reference" / "talk-tables.csv")
    assert len(ref) == 216 and set(ref["experiment"]) == {"main", "second_chance"}
    assert ref.query("optimizer == 'adam' and rho == 0 and lr == 3e-3 and wd == 1e-4")["mean_test_mse"].item() == (
        pytest.approx(0.85182645)
    )
    verdicts = evaluate_published(published_rows(ref, "main"), published_rows(ref, "second_chance"))
    assert [(c.key, c.verdict) for c in verdicts] == [(k, REPRODUCED) for k in ("C1", "C2", "C3", "C4")]


@pytest.mark.parametrize(("experiment", "partner"), [("second_chance", "main"), ("main", "second_chance")])
def test_write_vs_talk_writes_all_four_files(tmp_path, experiment, partner):
    """Either experiment of a setup, given the other as its partner, evaluates all four conclusions."""
    main, second = cells_frame(), cells_frame("second_chance", opts=["adam"], rhos=[0.02], noise_seed=1)
    ref = pd.concat([reference_frame(main), reference_frame(second, "second_chance")], ignore_index=True)
    ref_csv = write_reference(tmp_path / "ref.csv", ref, lr_text={3e-5: "0.00003"})
    frames = {"main": main, "second_chance": second}
    outs = {k: tmp_path / "out" / f"vs_talk.{k}" for k in ("md", "csv", "png", "pdf")}
    write_vs_talk(experiment, frames[experiment], ref_csv, experiment, *(str(p) for p in outs.values()),
                  partner=frames[partner], continues_partner=experiment == "second_chance")  # fmt: skip
    assert outs["png"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and outs["pdf"].read_bytes()[:5] == b"%PDF-"
    table = pd.read_csv(outs["csv"])
    if experiment == "second_chance":
        assert len(table) == 7 and list(table["side"].value_counts().sort_index()) == [6, 1]  # both, talk only
    md = outs["md"].read_text()
    assert RULE in md and "C4 from `second_chance` against `main`" in md
    verdict_lines = [line for line in md.splitlines() if line.startswith("- **C")]
    assert len(verdict_lines) == 4 and all(f"**{REPRODUCED}**" in line for line in verdict_lines)
    assert "(talk " in md and ("### ADAM, SAM rho=0.02" in md) == (experiment == "second_chance")
    assert not list((tmp_path / "out").glob(".*.tmp"))


def test_write_vs_talk_refuses_cells_of_another_experiment(tmp_path):
    cells = cells_frame()
    ref_csv = write_reference(tmp_path / "ref.csv", reference_frame(cells))
    outs = [str(tmp_path / f"o.{k}") for k in ("md", "csv", "png", "pdf")]
    with pytest.raises(ValueError, match=r"got the cells of experiment 'main', expected 'other'"):
        write_vs_talk("other", cells, ref_csv, "main", *outs)
    assert not (tmp_path / "o.md").exists()


MEASURED = ["hessian_top_eig", "sharpness_r0.05"]  # the measure jobs' columns of the job files below


def grid_job_files(tmp_path) -> tuple[list[str], str]:
    """compare_helpers' cells swept over batch size, as the records of two train jobs (a per-layer weight norm
    recorded in training; no model diverged, so diverged_step is None throughout) and one measure job's file
    (measures of every model, in the same order; none of one)."""
    cells = pd.concat([cells_frame().assign(batch_size=b) for b in (16, 64)], ignore_index=True)
    records = [
        {"config": {**{k: row[k] for k in ("optimizer", "lr", "wd", "rho", "seed", "batch_size")}, "epochs": 100,
                    "wd_mode": "coupled", "shuffle_labels": False},
         "test_mse": row["test_mse"], "train_mse": row["train_mse"], "test_accuracy": None, "train_accuracy": None,
         "diverged": False, "diverged_step": None, "epochs": 100, "steps": 500, "wall_s": 0.5, "device": "cpu",
         "store_key": f"{i:064x}", "layers": {"weight_norm_l1": 1.0 + i / 7}}
        for i, row in cells.iterrows()
    ]  # fmt: skip
    jobs = [tmp_path / f"train-{i}.json" for i in (1, 2)]
    for path, part in zip(jobs, (records[::2], records[1::2]), strict=True):
        path.write_text(json.dumps({"experiment": "main", "cells": part}))
    measures = [{"store_key": r["store_key"], "measures": dict(zip(MEASURED, (i / 3, i / 11), strict=True))}
                for i, r in enumerate(records[::2] + records[1::2])]  # fmt: skip
    measures[0]["measures"] = {}
    (tmp_path / "measure.json").write_text(json.dumps({"experiment": "main", "measures": measures}))
    return [str(p) for p in jobs], str(tmp_path / "measure.json")


def test_the_comparison_reads_cells_csv_but_for_the_measures_from_the_train_jobs_files(tmp_path):
    """What vs_talk compares, built from the train jobs' files alone (so that a new measure setting reruns no
    comparison), is cells.csv as read back, the measures' columns dropped: the same rows, columns, numbers and
    dtypes (diverged_step all missing: float, as read back from the file, not the records' None)."""
    jobs, measure_job = grid_job_files(tmp_path)
    test_csv = tmp_path / "test.csv"
    test_csv.write_text("x,label\n0,1\n1,3\n0,1\n1,3\n")  # labels' variance 1
    variance = label_variance(test_csv)
    tables.write_experiment_outputs("main", jobs, str(tmp_path / "cells.csv"), {}, sweep=["batch_size"],
                                    measured_paths=[measure_job], test_label_variance=variance)  # fmt: skip
    from_file = pd.read_csv(tmp_path / "cells.csv")
    assert set(MEASURED) < set(from_file.columns) and from_file["test_mse_rel"].equals(from_file["test_mse"])
    compared = grid_cells("main", jobs, str(test_csv), sweep=["batch_size"])
    pd.testing.assert_frame_equal(compared, from_file.drop(columns=MEASURED), check_exact=True)
    assert compared["diverged_step"].dtype == float and "weight_norm_l1" in compared
