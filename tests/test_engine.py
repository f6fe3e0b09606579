"""The stacked engine: agreement with the oracle, packing invariance, determinism, divergence, options."""

import math
from dataclasses import replace

import pytest
import torch
from engine_helpers import train_in_order

from genboost.train import engine
from genboost.train.blocks import block_key, even_chunks, plan_blocks
from genboost.train.checkpoint import state_problem
from genboost.train.model import Cell, flush_denormal_enabled, init_params, layer_sizes, steps_per_epoch
from genboost.train.oracle import train_cell

pytestmark = pytest.mark.usefixtures("one_torch_thread")
N_TRAIN, N_TEST, N_FEATURES, HIDDEN = 200, 60, 10, (16, 8)
SPE = steps_per_epoch(N_TRAIN, 32)  # 7: the last batch of each epoch has 8 rows


@pytest.fixture(scope="module")
def split(linear_split):
    return linear_split


def cell(optimizer="sgd", **kw):
    lr = 0.01 if optimizer == "sgd" else 1e-3
    base = dict(lr=lr, wd=0.0, rho=0.0, seed=0, epochs=100, t_max=50, hidden=HIDDEN)
    return Cell(optimizer=optimizer, **{**base, **kw})


# Every code path of the update: SGD / Adam, SAM off / on / adaptive, no wd, coupled wd, decoupled wd.
VARIANTS = [
    cell(opt, rho=rho, wd=wd, wd_mode=mode, sam_adaptive=adaptive, seed=i)
    for i, (opt, rho, adaptive, wd, mode) in enumerate(
        (opt, rho, adaptive, wd, mode)
        for opt in ("sgd", "adam")
        for rho, adaptive in ((0.0, False), (0.05, False), (0.1, True))
        for wd, mode in ((0.0, "coupled"), (1e-2, "coupled"), (1e-2, "decoupled"))
    )
]
METRICS = ("train_mse", "test_mse", "train_accuracy", "test_accuracy", "diverged", "diverged_step", "steps")


def params_equal(a, b):
    return all(torch.equal(x, y) for pa, pb in zip(a, b, strict=True) for x, y in zip(pa, pb, strict=True))


def same_result(a, b):
    """Bit-identical metrics and weights."""
    return all(a[k] == b[k] for k in METRICS) and params_equal(a["params"], b["params"])


def assert_agrees(cells, split, max_steps, rtol, atol, mse_rtol, device="cpu"):
    """Engine (all cells in one call) against the oracle cell by cell: weights and test MSE."""
    got = train_in_order(cells, split, device=device, max_steps=max_steps, return_params=True)
    for c, g in zip(cells, got, strict=True):
        want = train_cell(c, split, device=device, max_steps=max_steps, return_params=True)
        assert g["steps"] == want["steps"] == max_steps and not g["diverged"], c
        for pg, pw in zip(g["params"], want["params"], strict=True):
            for x, y in zip(pg, pw, strict=True):
                torch.testing.assert_close(x, y, rtol=rtol, atol=atol, msg=lambda m, c=c: f"{c}: {m}")
        assert g["test_mse"] == pytest.approx(want["test_mse"], rel=mse_rtol), c
        assert g["train_mse"] == pytest.approx(want["train_mse"], rel=mse_rtol), c


# The fast tier checks 20 steps (into the third epoch: two short last batches, two lr changes), the slow tier 50.
@pytest.mark.parametrize("steps", [20, pytest.param(50, marks=pytest.mark.slow)])
def test_float32_agrees_with_the_oracle_to_rounding(split, steps):
    assert_agrees(VARIANTS, split, max_steps=steps, rtol=1e-5, atol=1e-5, mse_rtol=1e-5)


@pytest.mark.slow  # 500 steps of the oracle: the 20-step test covers the fast tier
def test_float32_agrees_with_the_oracle_after_500_steps(split):
    """float32's rounding does not drift apart over a long run, on each optimizer and SAM mode (with coupled decay,
    which goes through the gradient): the float64 test below holds every variant's math over as many steps."""
    assert_agrees(VARIANTS[1::3], split, max_steps=500, rtol=1e-3, atol=1e-3, mse_rtol=1e-3)


@pytest.mark.slow  # 500 steps of the oracle: the 20-step test covers the fast tier
def test_float64_agrees_with_the_oracle_tightly_after_500_steps(split):
    cells = [replace(c, dtype="float64") for c in VARIANTS]
    assert_agrees(cells, split, max_steps=500, rtol=1e-9, atol=1e-9, mse_rtol=1e-9)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (the device check runs it)")
def test_on_cuda_agrees_with_the_oracle_on_cuda(split):
    """The CUDA path, every update variant: float64 tightly after 500 steps, float32 to rounding after 50."""
    cells = [replace(c, dtype="float64") for c in VARIANTS]
    assert_agrees(cells, split, max_steps=500, rtol=1e-9, atol=1e-9, mse_rtol=1e-9, device="cuda")
    assert_agrees(VARIANTS, split, max_steps=50, rtol=1e-4, atol=1e-4, mse_rtol=1e-4, device="cuda")


SAME_BITS_CASES = [("sgd", 0.0), ("adam", 0.0), ("sgd", 0.05), ("adam", 0.05)]


def mates_of(optimizer: str, rho: float) -> list:
    """Seven cells of one block: two rhos (when SAM is on), seven lrs, three wds, seven seeds."""
    return [
        cell(optimizer, rho=rho * (1 + i % 2), lr=cell(optimizer).lr * (1 + i), wd=1e-3 * (i % 3), seed=10 + i)
        for i in range(7)
    ]


def runs_on(threads: int, arrangements, mates, split) -> list:
    """The results of `mates` trained in each of `arrangements` (names of the ways to split them into blocks)
    on `threads` torch threads."""
    ways = {
        "together": lambda: train_in_order(mates, split, max_steps=20, return_params=True),
        "alone": lambda: [train_in_order([c], split, max_steps=20, return_params=True)[0] for c in mates],
        "blocks of 4 and 3": lambda: train_in_order(mates, split, max_steps=20, return_params=True, block_size=4),
    }
    previous = torch.get_num_threads()
    try:
        torch.set_num_threads(threads)
        return [ways[name]() for name in arrangements]
    finally:
        torch.set_num_threads(previous)


@pytest.mark.parametrize("optimizer,rho", SAME_BITS_CASES)
def test_a_cell_gives_the_same_bits_alone_inside_any_block_and_on_any_thread_count(split, optimizer, rho):
    """Each way of training a cell against one reference (together, on one thread): alone and in blocks of 4 and 3
    on one thread, together and in blocks on two. Alone on two threads (seven more runs) is the slow tier's."""
    mates = mates_of(optimizer, rho)
    reference, *runs = runs_on(1, ("together", "alone", "blocks of 4 and 3"), mates, split)
    runs += runs_on(2, ("together", "blocks of 4 and 3"), mates, split)
    for run in runs:
        assert all(same_result(a, b) for a, b in zip(reference, run, strict=True))


@pytest.mark.slow
@pytest.mark.parametrize("optimizer,rho", SAME_BITS_CASES)
def test_a_cell_alone_on_two_threads_gives_the_same_bits_as_in_its_block_on_one(split, optimizer, rho):
    mates = mates_of(optimizer, rho)
    (reference,) = runs_on(1, ("together",), mates, split)
    (alone,) = runs_on(2, ("alone",), mates, split)
    assert all(same_result(a, b) for a, b in zip(reference, alone, strict=True))


def test_mixed_settings_are_split_into_blocks_and_results_keep_the_input_order(split):
    cells = [VARIANTS[0], replace(VARIANTS[3], epochs=2), VARIANTS[1], replace(VARIANTS[9], dtype="float64")]
    together = train_in_order(cells, split, max_steps=20, return_params=True)
    for c, got in zip(cells, together, strict=True):
        assert same_result(got, train_in_order([c], split, max_steps=20, return_params=True)[0])
    assert together[1]["steps"] == 2 * SPE  # its own epochs
    assert together[3]["params"][0][0].dtype == torch.float64


def test_plan_blocks_groups_by_shared_settings_and_balances_chunks():
    cells = [cell("sgd", seed=i) for i in range(10)] + [cell("adam", seed=i) for i in range(3)]
    cells.insert(4, cell("sgd", seed=99, rho=0.05))  # SAM: its own block
    blocks = plan_blocks(cells, block_size=4)
    assert sorted(i for b in blocks for i in b) == list(range(len(cells)))
    assert all(len({block_key(cells[i]) for i in b}) == 1 for b in blocks)
    sgd_sizes = sorted(len(b) for b in blocks if cells[b[0]].optimizer == "sgd" and not cells[b[0]].sam)
    assert sgd_sizes == [3, 3, 4]  # 10 cells in chunks of at most 4, as even as possible
    assert [4] in blocks


def test_even_chunks_cover_the_range_in_near_equal_parts_and_never_leave_a_lone_cell():
    for n in range(2, 60):
        chunks = even_chunks(n, 4)
        assert [i for a, b in chunks for i in range(a, b)] == list(range(n))
        assert len(chunks) == -(-n // 4)
        assert {b - a for a, b in chunks} <= {2, 3, 4}  # predict: bmm of one cell rounds differently


def test_two_runs_are_bit_identical(split):
    cells = VARIANTS[::2]
    first, second = (train_in_order(cells, split, max_steps=40, return_params=True) for _ in range(2))
    assert all(same_result(a, b) for a, b in zip(first, second, strict=True))


def test_absurd_lr_diverges_at_the_oracle_step_and_leaves_block_mates_alone(split):
    mates = [cell("sgd", seed=i) for i in range(3)]
    wild = cell("sgd", lr=1e4, seed=5)
    block = train_in_order([mates[0], wild, *mates[1:]], split, max_steps=60, return_params=True)
    want = train_cell(wild, split, max_steps=60)
    assert block[1]["diverged"] and want["diverged"]
    assert block[1]["diverged_step"] == want["diverged_step"] and 1 < want["diverged_step"] < 60
    assert block[1]["steps"] == want["steps"] == want["diverged_step"] - 1
    # It kept the weights it had when its loss went non-finite ...
    frozen = train_in_order([wild], split, max_steps=block[1]["steps"], return_params=True)[0]
    for a, b in zip(block[1]["params"], frozen["params"], strict=True):
        for x, y in zip(a, b, strict=True):
            torch.testing.assert_close(x, y, rtol=0, atol=0, equal_nan=True)
    # ... and the others trained as if it was not there.
    for got, c in zip([block[0], *block[2:]], mates, strict=True):
        assert same_result(got, train_in_order([c], split, max_steps=60, return_params=True)[0])
        assert not got["diverged"] and got["diverged_step"] is None and got["steps"] == 60


def test_max_steps_stops_every_cell_there(split):
    cells = [cell("adam", seed=1), cell("adam", seed=2, lr=3e-3)]
    assert [r["steps"] for r in train_in_order(cells, split, max_steps=SPE + 3)] == [SPE + 3] * 2
    short = replace(cells[0], epochs=2)
    assert train_in_order([short], split, max_steps=10_000)[0]["steps"] == 2 * SPE
    untouched = train_in_order(cells, split, max_steps=0, return_params=True)
    for c, r in zip(cells, untouched, strict=True):
        assert r["steps"] == 0
        assert params_equal(r["params"], init_params(c.seed, layer_sizes(N_FEATURES, HIDDEN)))


def test_curve_records_every_n_epochs_and_the_end(split):
    cells = [replace(c, epochs=5) for c in VARIANTS[:2]]
    results = train_in_order(cells, split, curve_every=2)
    at_four = train_in_order(cells, split, max_steps=4 * SPE)
    for r, r4 in zip(results, at_four, strict=True):
        assert [p["epoch"] for p in r["curve"]] == [2, 4, 5]
        assert r["curve"][1]["test_mse"] == r4["test_mse"] and r["curve"][1]["train_mse"] == r4["train_mse"]
        assert r["curve"][-1]["test_mse"] == r["test_mse"] and r["curve"][-1]["train_mse"] == r["train_mse"]
    stopped = train_in_order(cells, split, curve_every=1, max_steps=2 * SPE + 3)
    assert [p["epoch"] for p in stopped[0]["curve"]] == [1, 2, pytest.approx(2 + 3 / SPE)]
    assert stopped[0]["curve"][-1]["test_mse"] == stopped[0]["test_mse"]
    assert "curve" not in at_four[0]


def test_progress_is_reported_per_epoch_and_block(split):
    cells = [replace(c, epochs=2) for c in (VARIANTS[0], VARIANTS[1], VARIANTS[9])]
    calls = []
    train_in_order(cells, split, progress=lambda *a: calls.append(a), block_size=4)
    assert calls == [(2, 1, 2), (2, 2, 2), (1, 1, 2), (1, 2, 2)]  # (cells of the block, epoch, epochs)


def test_flush_denormal_is_applied_for_the_run_and_restored(split):
    torch.set_flush_denormal(False)
    seen = []
    train_in_order([replace(VARIANTS[0], epochs=1)], split, progress=lambda *a: seen.append(flush_denormal_enabled()))
    assert seen == [True] and not flush_denormal_enabled()
    a = train_in_order([replace(VARIANTS[0], flush_denormal=False)], split, max_steps=20, return_params=True)[0]
    b = train_in_order([VARIANTS[0]], split, max_steps=20, return_params=True)[0]
    assert math.isfinite(a["test_mse"]) and a["test_mse"] == pytest.approx(b["test_mse"], rel=1e-4)


@pytest.mark.parametrize(
    "kwargs,message",
    [
        (dict(cells=[replace(VARIANTS[0], optimizer="rmsprop")]), r"cells\[0\]\.optimizer"),
        (dict(cells=[replace(VARIANTS[0], wd_mode="l2")]), r"cells\[0\]\.wd_mode"),
        (dict(block_size=0), "block_size"),
        (dict(max_steps=-1), "max_steps"),
        (dict(curve_every=0), "curve_every"),
    ],
)
def test_bad_arguments_are_rejected_by_name(split, kwargs, message):
    args = dict(cells=[VARIANTS[0]], split=split) | kwargs
    with pytest.raises(ValueError, match=message):
        train_in_order(**args)


def test_a_longer_run_goes_on_from_a_shorter_runs_state_to_the_same_bits(split):
    """The second-chance shortcut: epochs 1..3 stored by a 3-epoch run, 4..6 trained from there."""
    longer = [replace(c, epochs=6, t_max=4) for c in VARIANTS]  # t_max 4: the schedule restarts inside
    shorter = [replace(c, epochs=3) for c in longer]
    whole = train_in_order(longer, split, return_params=True, curve_every=2)
    states = [r["state"] for r in train_in_order(shorter, split, curve_every=2, return_state=True)]
    assert all(s["epoch"] == 3 and s["steps"] == 3 * SPE for s in states)
    resumed = train_in_order(longer[::-1], split, return_params=True, curve_every=2, start_states=states[::-1])[::-1]
    for a, b in zip(whole, resumed, strict=True):
        assert same_result(a, b)
        assert a["curve"] == b["curve"] and [p["epoch"] for p in b["curve"]] == [2, 4, 6]  # not the short run's 3


def test_a_state_only_at_the_end_of_an_epoch_and_a_start_past_the_cells_epochs_is_refused(split):
    c = cell("adam", epochs=2)
    assert train_in_order([c], split, max_steps=SPE + 1, return_state=True)[0]["state"] is None
    state = train_in_order([c], split, return_state=True)[0]["state"]
    with pytest.raises(ValueError, match="ends at epoch 2, cell 0 has 1"):
        train_in_order([replace(c, epochs=1)], split, start_states=[state])


def test_train_blocks_yields_each_block_when_it_is_done_with_its_cells_positions(split):
    cells = [replace(c, epochs=1) for c in (VARIANTS[0], VARIANTS[3], VARIANTS[1], VARIANTS[4])]  # no SAM, SAM, ...
    calls = []
    blocks = engine.train_blocks(cells, split, return_params=True, progress=lambda *a: calls.append(a))
    idx, results = next(blocks)
    assert idx == [0, 2] and calls == [(2, 1, 1)]  # the second block has not trained yet
    rest = list(blocks)
    assert [i for i, _ in rest] == [[1, 3]] and calls == [(2, 1, 1), (2, 1, 1)]
    by_cell = dict(zip(idx + rest[0][0], results + rest[0][1], strict=True))
    together = train_in_order(cells, split, return_params=True)
    assert all(same_result(by_cell[i], r) for i, r in enumerate(together))


def test_a_state_that_does_not_fit_the_cell_is_named(split):
    c = cell("adam", epochs=4)
    state = train_in_order([replace(c, epochs=2)], split, return_state=True)[0]["state"]
    assert state_problem(c, state, split) is None
    w, b, *rest = state["stack"]
    bad = {
        "epoch 5 is not in 1..4": {**state, "epoch": 5},
        "epoch 0 is not": {**state, "epoch": 0},
        "steps are not 2 epochs": {**state, "steps": 3},
        # a [1, 1] bias: copy_ would broadcast it over the cell's [1, 16] silently
        "'stack' tensors are not": {**state, "stack": [w, b[:, :1], *rest]},
        "'moments' tensors are not 6 float32": {**state, "moments": [t.double() for t in state["moments"]]},
        "'squares' is not a list of tensors": {k: v for k, v in state.items() if k != "squares"},
        "'stack' tensors are not all finite": {**state, "stack": [w.clone().fill_diagonal_(math.nan), b, *rest]},
        "curve is not a list": {**state, "curve": None},
    }
    for why, wrong in bad.items():
        assert why in state_problem(c, wrong, split)
    assert "'stack' tensors are not" in state_problem(replace(c, hidden=(16, 4)), state, split)
