"""The implicit-bias section on synthetic cells whose answer is known by construction, and flips."""

import itertools

import numpy as np
import pandas as pd
import pytest

from genboost.analysis import implicit_bias, tables
from genboost.compare import summary

BATCHES, LRS, WDS, SEEDS = [8, 32, 128], [1e-3, 3e-3, 2e-2], [0.0, 1e-4], [0, 1, 2]


def synthetic(sign: int, experiment="implicit_bias", optimizers=("sgd", "adam")) -> pd.DataFrame:
    """sign +1: the top eigenvalue grows with batch size and test MSE with it (small batches flatter and better);
    -1: both shrink with it. pacbayes_flatness and test MSE fall with lr either way; sharpness_r0.05 is noise."""
    rng = np.random.default_rng(0)
    offset = rng.normal(0, 0.05, len(SEEDS))
    rows = []
    for opt, b, lr, wd, s in itertools.product(optimizers, BATCHES, LRS, WDS, SEEDS):
        size = np.log2(b) if sign > 0 else -np.log2(b)
        rows.append(dict(
            experiment=experiment, optimizer=opt, lr=lr, wd=wd, rho=0.0, seed=s, batch_size=b, epochs=200,
            test_mse=0.5 + 0.02 * size - 0.05 * np.log10(lr) + offset[s] + rng.normal(0, 0.002), train_mse=0.3,
            diverged=False, shuffle_labels=False, hessian_top_eig=10 + size + rng.normal(0, 0.1),
            pacbayes_flatness=5 - np.log10(lr) + rng.normal(0, 0.01), **{"sharpness_r0.05": rng.normal()},
        ))  # fmt: skip
    return pd.DataFrame(rows)


def scope(text: str, title: str) -> str:
    return text.split(f"#### {title}\n")[1].split("####")[0]


def test_measure_columns_are_the_registrys_in_its_order():
    cells = synthetic(+1).assign(weight_norm=1.0, dist_from_init=float("nan"), pacbayes_mag_flatness=2.0, other=1.0)
    assert tables.measure_columns(cells) == [
        "sharpness_r0.05", "hessian_top_eig", "pacbayes_flatness", "pacbayes_mag_flatness", "weight_norm"]  # fmt: skip


@pytest.mark.parametrize(
    ("variable", "tau", "p", "said"),
    [
        ("batch_size", 0.4, 0.001, "flatter"),
        ("batch_size", -0.4, 0.001, "sharper"),
        ("lr", -0.4, 0.001, "flatter"),
        ("lr", 0.4, 0.001, "sharper"),
        ("batch_size", 0.4, 0.2, None),
        ("lr", float("nan"), float("nan"), None),
    ],
)
def test_direction_of_a_tau(variable, tau, p, said):
    assert implicit_bias.direction(variable, tau, p, alpha=0.05) == said


def test_smaller_batches_flatter_and_better_when_the_numbers_say_so():
    text = "\n".join(implicit_bias.section("implicit_bias", synthetic(+1)))
    sgd = scope(text, "SGD")
    assert "- Smaller batches gave flatter minima by hessian_top_eig (tau = +0." in sgd
    assert "no significant relation with" in sgd and "sharpness_r0.05 (tau = " in sgd.split("no significant")[1]
    assert "- Larger steps (lr) gave flatter minima by pacbayes_flatness (tau = -" in sgd
    said = "- Test MSE, batch_size=8 vs batch_size=128 (paired by lr, wd, rho and seed): smaller batches generalized"
    assert f"{said} better: mean difference" in sgd and "n = 18 pairs, t-test p < 0.0001" in sgd
    assert float(sgd.split("mean difference ")[1].split()[0]) == pytest.approx(0.02 * (3 - 7), abs=0.003)
    assert "- Larger steps (lr) went with lower test MSE (tau = -0." in sgd
    assert "- Flatter minima went with lower test MSE by hessian_top_eig" in sgd
    assert (
        "**Verdict (SGD): smaller batches gave flatter minima by 1 of 3 measures (sharper by 0) and generalized "
        "better; larger steps (lr) gave flatter minima by 1 of 3 measures (sharper by 0) and went with lower test "
        "MSE.**"
    ) in sgd
    assert "#### All optimizers" in text and "#### ADAM" in text


def test_the_verdicts_flip_with_the_numbers():
    text = "\n".join(implicit_bias.section("implicit_bias", synthetic(-1)))
    everyone = scope(text, "All optimizers")
    assert "- Smaller batches gave sharper minima by hessian_top_eig (tau = -0." in everyone
    assert "smaller batches generalized worse: mean difference +0." in everyone and "n = 36 pairs" in everyone
    assert "- Flatter minima went with lower test MSE by hessian_top_eig" in everyone  # still: both fall together
    said = "**Verdict (All optimizers): smaller batches gave flatter minima by 0 of 3 measures (sharper by 1) and "
    assert f"{said}generalized worse; larger steps (lr)" in everyone


def test_noise_gives_no_verdict_of_either_kind():
    cells = synthetic(+1)
    rng = np.random.default_rng(5)
    cells["hessian_top_eig"] = rng.normal(size=len(cells))
    cells["test_mse"] = 0.5 + rng.normal(0, 0.01, len(cells))
    sgd = scope("\n".join(implicit_bias.section("ib", cells[cells.optimizer == "sgd"])), "SGD")
    assert "smaller batches gave flatter minima by 0 of 3 measures (sharper by 0); test MSE: within noise" in sgd
    assert "(sharper by 0) and no significant relation with test MSE.**" in sgd
    assert "no evidence that smaller batches generalize differently" in sgd


def test_only_an_experiment_that_sweeps_batch_size_gets_the_section():
    main = synthetic(+1, experiment="main")
    main = main[main.batch_size == 32].drop(columns="batch_size")
    assert implicit_bias.section("main", main) == []
    text = summary.summarize(
        pd.concat([main, synthetic(+1)], ignore_index=True), ["main", "implicit_bias"], baseline="main"
    )
    assert text.count("do smaller batches and larger steps find flatter minima") == 1
    assert "## implicit_bias: do smaller batches" in text and "batch_size=8 vs batch_size=128" in text
    diverged = synthetic(+1)
    diverged.loc[diverged.batch_size == 8, ["test_mse", "diverged"]] = [float("nan"), True]
    said = "\n".join(implicit_bias.section("implicit_bias", diverged))
    assert "Test MSE, batch_size=8 vs batch_size=128: nothing to compare (every pair has a diverged side)" in said
