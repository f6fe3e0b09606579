"""The best configuration, one rule everywhere (genboost/analysis/best.py), and the display formats."""

import math

import numpy as np
import pandas as pd

from genboost.analysis import formats
from genboost.analysis.best import best, best_of_each, most_finished


def means() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "optimizer": ["sgd", "sgd", "adam", "adam", "adam"],
            "lr": [1e-3, 1e-2, 1e-3, 1e-2, 1e-1],
            "mean": [0.5, math.nan, 0.3, 0.3, math.nan],  # NaN: a diverged seed
            "train_mean": [0.1, 0.05, 0.2, 0.4, math.nan],
        }
    )


def test_best_is_the_lowest_mean_among_configurations_that_have_one():
    assert best(means())["lr"] == 1e-3 and best(means())["optimizer"] == "adam"  # the tie goes to the first row
    assert best(means(), "train_mean")["lr"] == 1e-2 and best(means(), "train_mean")["optimizer"] == "sgd"
    assert best(means().assign(mean=np.nan)) is None and best(means().iloc[:0]) is None


def test_best_of_each_group_leaves_out_groups_without_a_mean():
    found = best_of_each(means(), "optimizer")
    assert list(found) == ["adam", "sgd"] and found["sgd"]["lr"] == 1e-3
    assert list(best_of_each(means().assign(mean=[0.1, 0.2, *[np.nan] * 3]), "optimizer")) == ["sgd"]


def test_most_finished_ranks_by_finished_seeds_then_their_mean_then_the_first_row():
    frame = pd.DataFrame({"lr": [1, 2, 3, 4, 5], "finished": [1, 2, 2, 2, 0],
                          "finished_mean": [0.1, 0.5, 0.4, 0.4, math.nan]})  # fmt: skip
    assert most_finished(frame)["lr"] == 3  # two seeds beat one with a lower mean; 3 and 4 tie: the first
    assert most_finished(frame.iloc[[4]])["lr"] == 5 and most_finished(frame.iloc[:0]) is None


def test_display_formats():
    assert formats.number(0.123456) == "0.1235" and formats.number(-0.05, "+.3f") == "-0.050"
    assert formats.number(math.nan) == formats.number(None) == "–"
    assert formats.number(math.nan, missing="diverged") == "diverged"
    assert [formats.p_value(p) for p in (math.nan, 5e-5, 0.01234)] == ["–", "<0.0001", "0.0123"]
    assert formats.sam_label(0.0) == "no SAM" and formats.sam_label(5e-2) == "SAM rho=0.05"
    assert formats.panel_title("adam", 0.02, {"batch_size": 16}) == "ADAM, SAM ρ=0.02, batch_size=16"
