"""Conclusions come from the numbers: synthetic cells with a known answer."""

import itertools

import numpy as np
import pandas as pd
import pytest

from genboost.compare import scale, summary, talk

# Whole summaries of hand-built frames, 0.3-2 s each: the slow tier, to keep the fast one under its budget.
SLOW_STATS = pytest.mark.slow


def synthetic_cells(sam_effect: float, wd_effect: float, experiment="main", shuffle=False) -> pd.DataFrame:
    """Test MSE from the effects given, plus a little noise (sd 1e-5, below the summary's 4 decimals): paired
    models then differ by distinct amounts, so scipy's Wilcoxon test takes its exact distribution (milliseconds)
    instead of the permutation test of tied pairs (seconds a summary)."""
    noise = iter(np.random.default_rng(0).normal(0, 1e-5, 2 * 2 * 2 * 2 * 3))
    rows = []
    for opt, lr, wd, rho, seed in itertools.product(["sgd", "adam"], [1e-3, 1e-2], [0, 1e-3], [0, 0.05], [0, 1, 2]):
        base = 1.0 + (0.5 if opt == "adam" else 0) + (0.3 if lr == 1e-3 else 0)
        mse = base + (sam_effect if rho else 0) + (wd_effect if wd else 0) + 0.001 * seed + next(noise)
        rows.append(dict(experiment=experiment, optimizer=opt, lr=lr, wd=wd, rho=rho, seed=seed, epochs=10,
                         test_mse=mse, train_mse=mse - 0.2, diverged=False, shuffle_labels=shuffle))  # fmt: skip
    return pd.DataFrame(rows)


@SLOW_STATS
def test_best_configuration_and_effects_follow_the_numbers():
    text = summary.summarize(synthetic_cells(sam_effect=-0.1, wd_effect=0.05), ["main"])
    overall = next(line for line in text.splitlines() if line.startswith("- Overall"))
    assert "SGD, lr=0.01, wd=0, SAM rho=0.05" in overall and "0.9010" in overall
    assert "- SAM: the best with it" in text and "lowers the test MSE by 0.1000" in text
    assert "- Weight decay: the best with it" in text and "raises the test MSE by 0.0500" in text
    assert "SGD wins" in text


@SLOW_STATS
def test_flipped_effects_flip_the_conclusions():
    text = summary.summarize(synthetic_cells(sam_effect=0.1, wd_effect=-0.05), ["main"])
    assert "raises the test MSE by 0.1000" in text and "lowers the test MSE by 0.0500" in text


def test_diverged_configurations_are_not_best():
    cells = synthetic_cells(sam_effect=-0.1, wd_effect=0.0)
    best = (cells.optimizer == "sgd") & (cells.lr == 1e-2) & (cells.rho == 0.05) & (cells.wd == 0)
    cells.loc[best & (cells.seed == 0), ["test_mse", "diverged"]] = [float("nan"), True]
    overall = next(line for line in summary.summarize(cells, ["main"]).splitlines() if line.startswith("- Overall"))
    assert "wd=0.001, SAM rho=0.05" in overall


def test_random_label_experiment_reports_its_fit():
    noise = synthetic_cells(0.0, 0.0, experiment="random_labels", shuffle=True)
    noise["train_mse"] = 0.05
    noise["test_mse"] = 4.0
    cells = pd.concat([synthetic_cells(-0.1, 0.0), noise], ignore_index=True)
    text = summary.summarize(cells, ["main", "random_labels"], baseline="main")
    assert "## random_labels: random-label control" in text
    assert "Lowest train MSE on shuffled labels: 0.0500" in text and "test MSE 4.0000" in text
    assert summary.summarize(cells, ["random_labels", "main"], baseline="main") == text, "the order means nothing"
    with pytest.raises(ValueError, match="the baseline None is not one of the experiments"):
        summary.summarize(cells, ["main", "random_labels"])


def test_a_study_whose_every_model_diverged_says_so():
    cells = synthetic_cells(0.0, 0.0)
    cells[["test_mse", "train_mse", "diverged"]] = [float("nan"), float("nan"), True]
    text = summary.summarize(cells, ["main"])
    said = "Every model diverged (48 of 48): nothing to compare."
    best, effects, stats = text.split("## Best configurations")[1].split("## ")[:3]
    assert said in best and said in effects and "Statistics" in stats
    assert "### main\n\nEvery model diverged (48 of 48): nothing to compare." in text
    assert "SGD vs Adam" not in text


def test_one_optimizer_without_wd_sam_or_second_seed_has_nothing_to_compare():
    cells = synthetic_cells(0.0, 0.0)
    cells = cells[(cells.optimizer == "adam") & (cells.lr == 1e-3) & (cells.wd == 0) & (cells.rho == 0)]
    text = summary.summarize(cells[cells.seed == 0], ["main"])
    assert "- Overall: **ADAM, lr=0.001, wd=0, no SAM**: test MSE 1.8000 (n=1)" in text  # no std of one seed
    assert "- SAM: nothing to compare (no configuration with it)" in text
    assert "- Weight decay: nothing to compare (no configuration with it)" in text
    assert "Nothing to compare: no two models differ in SAM, weight decay or optimizer alone" in text
    assert "SGD vs Adam" not in text and "nan" not in text


def test_an_optimizer_whose_every_configuration_diverged_is_not_compared():
    cells = synthetic_cells(-0.1, 0.0)
    cells.loc[(cells.optimizer == "adam") & (cells.seed == 1), ["test_mse", "diverged"]] = [float("nan"), True]
    text = summary.summarize(cells, ["main"])
    assert "- ADAM: all diverged" in text
    assert "- Not comparable: every ADAM configuration has a diverged seed." in text


@SLOW_STATS
def test_the_talks_conclusions_per_setup_with_their_flips():
    """Two setups: the talk-like one (SGD behind) and one where SGD wins: the matrix shows C3 flipping."""
    talk_like = synthetic_cells(sam_effect=0.1, wd_effect=0.05)
    talk_like.loc[talk_like.optimizer == "sgd", "test_mse"] += 1.0
    sgd_wins = synthetic_cells(sam_effect=0.1, wd_effect=0.05, experiment="modern")
    text = summary.summarize(
        pd.concat([talk_like, sgd_wins]), ["main", "modern"], {"main": None, "modern": None}, baseline="main"
    )
    table = text.split("## The talk's conclusions, per setup")[1]
    c3 = next(line for line in table.splitlines() if line.startswith("| C3"))
    assert [cell.split(" (")[0].strip() for cell in c3.split("|")[2:4]] == ["reproduced", "not reproduced"]
    assert "- modern: flips C3 (reproduced → not reproduced)" in table
    assert "not testable" in next(line for line in table.splitlines() if line.startswith("| C4"))


def matrix_rows(text: str) -> dict[str, list[str]]:
    """The conclusions matrix: its first cell's first word (conclusion, C1.., best) -> the row's other cells."""
    table = text.split("## The talk's conclusions, per setup")[1].split("\n## ")[0]
    rows = [[c.strip() for c in line.strip("|").split("|")] for line in table.splitlines() if line.startswith("|")]
    return {row[0].split(":")[0].split(" ")[0]: row[1:] for row in rows if not set(row[0]) <= {"-"}}


@SLOW_STATS
def test_each_dataset_gets_a_column_judged_on_its_own_cells():
    """Beside the setups, one column per dataset, its verdicts from its own cells, its numbers relative to its
    test labels' variance too: SGD is behind on one dataset and ahead on the other, and C3 says so."""
    talk_like = synthetic_cells(sam_effect=0.1, wd_effect=0.05)
    talk_like.loc[talk_like.optimizer == "sgd", "test_mse"] += 1.0
    modern = talk_like.assign(experiment="modern")
    sgd_behind = talk_like.assign(experiment="anes96")
    sgd_ahead = synthetic_cells(sam_effect=0.1, wd_effect=0.05, experiment="fair")
    for frame, variance in ((sgd_behind, 2.0), (sgd_ahead, 4.0)):
        frame["test_mse_rel"] = frame["test_mse"] / variance
    cells = pd.concat([talk_like, modern, sgd_behind, sgd_ahead], ignore_index=True)
    datasets = {"anes96": {"dataset": "anes96", "second_chance": None}, "fair": {"dataset": "fair"}}
    text = summary.summarize(
        cells, ["main", "modern", "anes96", "fair"], {"main": None, "modern": None}, datasets, "main"
    )
    rows = matrix_rows(text)
    assert rows["conclusion"] == ["main", "modern", "anes96 (anes96 data)", "fair (fair data)"]
    c3 = rows["C3"]
    assert [entry.split(" (")[0] for entry in c3] == ["reproduced", "reproduced", "reproduced", "not reproduced"]
    assert "Δ -0.500" in c3[2] and "rel -0.250" in c3[2]  # best Adam 1.501 against best SGD 2.001, variance 2
    assert "Δ +0.500" in c3[3] and "rel +0.125" in c3[3]  # best Adam 1.501 against best SGD 1.001, variance 4
    assert "rel" not in c3[0], "a setup's entry is as before"
    assert rows["best"] == ["1.5010", "1.5010", "1.5010 (rel 0.751)", "1.0010 (rel 0.250)"]
    untested = "(C1, C4 not testable there)"  # no lr 3e-3 in these cells, no second chance
    assert f"- fair (fair data): flips C3 (reproduced → not reproduced) relative to main {untested}" in text
    assert f"- anes96 (anes96 data): flips no conclusion relative to main {untested}" in text
    # a second chance on a dataset makes its C4 testable: here it beats plain Adam (1.401 against 1.501)
    fair_long = sgd_ahead[(sgd_ahead.optimizer == "adam") & (sgd_ahead.rho > 0)].assign(experiment="fair_long")
    fair_long[["test_mse", "test_mse_rel"]] -= [0.2, 0.05]
    with_long = {**datasets, "fair": {"dataset": "fair", "second_chance": "fair_long"}}
    longer = "\n".join(talk.talk_section(pd.concat([cells, fair_long]), {"main": None}, with_long))
    assert matrix_rows(longer)["C4"][2].startswith("not reproduced (Δ +0.100, rel +0.025")
    # without setups (no published table), the datasets still get their matrix
    alone = matrix_rows("\n".join(talk.talk_section(cells, {}, datasets)))
    assert alone["conclusion"] == ["anes96 (anes96 data)", "fair (fair data)"] and alone["C3"] == c3[2:]


@SLOW_STATS
def test_the_conclusions_section_is_always_there_and_says_why_when_empty():
    text = summary.summarize(synthetic_cells(0.1, 0.05), ["main"])
    assert "## The talk's conclusions, per setup\n\nNo experiment to check them on" in text


def test_an_experiment_on_its_own_grid_names_the_side_its_grid_lacks():
    """One optimizer, no lr 3e-3, no SAM: every claim but none is not testable, each naming what is missing."""
    adam = synthetic_cells(0.1, 0.05, experiment="mine").query("optimizer == 'adam' and rho == 0")
    rows = matrix_rows("\n".join(talk.talk_section(adam, {}, {"mine": {"dataset": "mydata"}})))
    assert rows["C1"] == ["not testable: the grid has no Adam at lr 3e-3"]
    assert rows["C2"] == ["not testable: the grid has no SAM (rho > 0)"]
    assert rows["C3"] == ["not testable: the grid has no SGD"]
    assert rows["C4"] == ["not testable: no experiment continues this one (config key continues: its second chance)"]


@SLOW_STATS
def test_best_test_mse_carries_its_scale_and_an_easy_split_is_flagged():
    cells = synthetic_cells(sam_effect=-0.1, wd_effect=0.05)
    cells["test_mse_rel"] = cells["test_mse"] / 2.0
    assert scale.easy_split_lines(cells, ["main"]) == []  # train MSE is 0.2 below test MSE everywhere
    easy = cells.assign(train_mse=cells["test_mse"] + 0.1)
    easy.loc[easy.index[:10], "train_mse"] = 0.0  # 10 of 48 models the other way
    text = summary.summarize(easy, ["main"])
    assert "1.0 is what always predicting the test labels' mean scores" in text
    overall = next(line for line in text.splitlines() if line.startswith("- Overall"))
    assert "0.9010" in overall and "rel 0.450" in overall  # 0.9010 / 2
    assert all("rel 0." in line for line in text.splitlines() if line.startswith(("- SGD:", "- ADAM:", "- SAM:")))
    assert "**Check the split of main**: its test MSE is below its train MSE for 79% of its models" in text


def test_the_experiments_not_checked_are_named_with_why():
    batch = synthetic_cells(0.1, 0.05, experiment="batch")
    sweep = pd.concat([batch.assign(batch_size=8), batch.assign(batch_size=32)])
    cells = pd.concat(
        [synthetic_cells(0.1, 0.05, experiment="noise", shuffle=True), sweep, batch.assign(experiment="m")]
    )
    lines = talk.unchecked_lines(cells, ["batch", "m", "noise"], {"m"})
    assert lines == [
        "- Not checked on batch: it sweeps batch_size.",
        "- Not checked on noise: it trains on shuffled labels.",
    ]


def test_shuffled_labels_are_parsed_not_compared_as_text():
    cells = pd.DataFrame({"shuffle_labels": [True, False, "True", " false", "TRUE"]})
    assert talk.shuffled_labels(cells).tolist() == [True, False, True, False, True]
    with pytest.raises(ValueError, match="shuffle_labels must be True or False, got 'yes'"):
        talk.shuffled_labels(pd.DataFrame({"shuffle_labels": [True, "yes"]}))
