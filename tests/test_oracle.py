"""The oracle, the plain trainer: its contract (init, batches, decay modes), determinism, divergence, global state."""

import math
from dataclasses import replace

import pytest
import torch

from genboost.train.model import Cell, Split, flush_denormal_enabled, init_params, layer_sizes, shuffle_generator
from genboost.train.oracle import train_cell

N_TRAIN, N_TEST, N_FEATURES = 45, 15, 5


@pytest.fixture(scope="module")
def split():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(N_TRAIN + N_TEST, N_FEATURES, generator=g)
    y = torch.randint(0, 7, (N_TRAIN + N_TEST,), generator=g).float()
    return Split(x[:N_TRAIN], y[:N_TRAIN], x[N_TRAIN:], y[N_TRAIN:], classes=7)


CELL = Cell(optimizer="sgd", lr=0.01, wd=1e-2, rho=0.0, seed=3, epochs=2, batch_size=16, t_max=4, hidden=(8, 8))


def params_equal(a, b):
    return all(torch.equal(wa, wb) and torch.equal(ba, bb) for (wa, ba), (wb, bb) in zip(a, b, strict=True))


def test_two_runs_are_bit_identical_and_leave_global_rng_alone(split):
    for cell in (CELL, replace(CELL, optimizer="adam", rho=0.05, wd_mode="decoupled")):
        rng = torch.get_rng_state()
        first = train_cell(cell, split, return_params=True)
        second = train_cell(cell, split, return_params=True)
        assert torch.equal(rng, torch.get_rng_state())
        assert params_equal(first.pop("params"), second.pop("params"))
        assert first == second
        assert first["steps"] == cell.epochs * math.ceil(N_TRAIN / cell.batch_size)
        assert not first["diverged"] and first["diverged_step"] is None
        assert all(math.isfinite(first[k]) for k in ("train_mse", "test_mse", "train_accuracy", "test_accuracy"))


def first_steps_by_hand(cell, split, n_steps, decoupled):
    """SGD with momentum by hand from init_params, on the first batches of shuffle_generator's first permutation."""
    params = [
        p.clone() for wb in init_params(cell.seed, layer_sizes(N_FEATURES, cell.hidden), torch.float64) for p in wb
    ]
    perm = torch.randperm(N_TRAIN, generator=shuffle_generator(cell.seed))
    bufs = [None] * len(params)
    for step in range(n_steps):
        idx = perm[step * cell.batch_size : (step + 1) * cell.batch_size]
        leaves = [p.requires_grad_() for p in params]
        h = split.x_train[idx]
        for i in range(0, len(leaves), 2):
            h = h @ leaves[i] + leaves[i + 1]
            h = torch.relu(h) if i < len(leaves) - 2 else h
        grads = torch.autograd.grad(torch.mean((h.squeeze(-1) - split.y_train[idx]) ** 2), leaves)
        new = []
        for j, (p, g) in enumerate(zip(params, grads, strict=True)):
            p = p.detach()
            d = g if decoupled else g + cell.wd * p  # L2: the decay joins the gradient (and the momentum)
            bufs[j] = d if bufs[j] is None else cell.momentum * bufs[j] + d
            new.append((p * (1 - cell.lr * cell.wd) if decoupled else p) - cell.lr * bufs[j])
        params = new
    return list(zip(params[::2], params[1::2], strict=True))


@pytest.mark.parametrize("wd_mode", ["coupled", "decoupled"])
def test_first_steps_match_hand_computation(split, wd_mode):
    cell = replace(CELL, dtype="float64", wd=0.1, wd_mode=wd_mode)
    split64 = split.to(dtype=torch.float64)
    got = train_cell(cell, split64, max_steps=2, return_params=True)
    assert got["steps"] == 2
    expected = first_steps_by_hand(cell, split64, 2, wd_mode == "decoupled")
    for (w, b), (ew, eb) in zip(got["params"], expected, strict=True):
        assert w.dtype == torch.float64
        torch.testing.assert_close(w, ew, rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(b, eb, rtol=1e-12, atol=1e-12)


def test_sam_changes_the_result(split):
    plain = train_cell(CELL, split, return_params=True)
    for adaptive in (False, True):
        sam = train_cell(replace(CELL, rho=0.05, sam_adaptive=adaptive), split, return_params=True)
        assert sam["steps"] == plain["steps"]
        assert not params_equal(plain["params"], sam["params"])


def test_absurd_lr_diverges_at_the_right_step(split):
    cell = replace(CELL, lr=1e6, epochs=5)
    result = train_cell(cell, split)
    assert result["diverged"]
    step = result["diverged_step"]
    assert step is not None and result["steps"] == step - 1
    # Up to the step before, every batch loss was finite; the batch of `step` is not.
    before = train_cell(cell, split, max_steps=step - 1, return_params=True)
    assert not before["diverged"] and before["steps"] == step - 1
    gen = shuffle_generator(cell.seed)
    per_epoch = math.ceil(N_TRAIN / cell.batch_size)
    for _ in range((step - 1) // per_epoch + 1):
        perm = torch.randperm(N_TRAIN, generator=gen)
    start = ((step - 1) % per_epoch) * cell.batch_size
    idx = perm[start : start + cell.batch_size]
    h = split.x_train[idx]
    for i, (w, b) in enumerate(before["params"]):
        h = h @ w + b
        h = torch.relu(h) if i < len(before["params"]) - 1 else h
    assert not torch.isfinite(torch.mean((h.squeeze(-1) - split.y_train[idx]) ** 2))


def test_max_steps_is_honoured(split):
    per_epoch = math.ceil(N_TRAIN / CELL.batch_size)
    cut = train_cell(replace(CELL, epochs=3), split, max_steps=per_epoch, return_params=True)
    one_epoch = train_cell(replace(CELL, epochs=1), split, return_params=True)
    assert cut["steps"] == one_epoch["steps"] == per_epoch
    assert params_equal(cut["params"], one_epoch["params"])
    assert train_cell(CELL, split, max_steps=2)["steps"] == 2


@pytest.mark.parametrize("outside", [False, True])
def test_flush_denormal_is_restored(split, outside):
    torch.set_flush_denormal(outside)
    try:
        if flush_denormal_enabled() != outside:
            pytest.skip("this CPU cannot flush denormals")
        train_cell(replace(CELL, flush_denormal=not outside, epochs=1), split)
        assert flush_denormal_enabled() == outside
    finally:
        torch.set_flush_denormal(False)


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_decoupled_decay_differs_from_coupled_only_when_wd_is_nonzero(split, optimizer):
    for wd, should_match in ((0.1, False), (0.0, True)):
        coupled = replace(CELL, optimizer=optimizer, wd=wd, rho=0.05)
        a = train_cell(coupled, split, return_params=True)
        b = train_cell(replace(coupled, wd_mode="decoupled"), split, return_params=True)
        assert params_equal(a["params"], b["params"]) == should_match


@pytest.mark.parametrize("field, value", [("optimizer", "rmsprop"), ("wd_mode", "l1")])
def test_bad_settings_are_refused(split, field, value):
    with pytest.raises(ValueError, match=field):
        train_cell(replace(CELL, **{field: value}), split)
