"""model.norm: the engine's LayerNorm against torch's, engine against oracle, packing invariance, wd_norm_params,
resuming, the per-layer weight norms and effective lr, the store's and the measure job's norm params, the config."""

import copy
from dataclasses import replace

import pytest
import torch
from engine_helpers import train_in_order
from workflow_helpers import checked_config, repo_config

from genboost import wiring
from genboost.config.study import Study
from genboost.train import engine_net, jobs, model
from genboost.train.model import Cell, steps_per_epoch
from genboost.train.oracle import train_cell
from genboost.train.store import CellStore

pytestmark = pytest.mark.usefixtures("one_torch_thread")
N_TRAIN, N_TEST, N_FEATURES, HIDDEN = 200, 60, 10, (16, 8)
SPE = steps_per_epoch(N_TRAIN, 32)


@pytest.fixture(scope="module")
def split(linear_split):
    return linear_split


def cell(optimizer="sgd", **kw):
    lr = 0.05 if optimizer == "sgd" else 3e-3
    base = dict(lr=lr, wd=0.0, rho=0.0, seed=0, epochs=100, t_max=50, hidden=HIDDEN, norm="layer")
    return Cell(optimizer=optimizer, **{**base, **kw})


# Every path of the update with a norm: SGD / Adam, SAM off / on / adaptive, coupled / decoupled wd, the norm's
# params decayed or not.
VARIANTS = [
    cell(opt, rho=rho, wd=wd, wd_mode=mode, sam_adaptive=adaptive, wd_norm_params=decay_norm, seed=i)
    for i, (opt, rho, adaptive, wd, mode, decay_norm) in enumerate(
        (opt, rho, adaptive, wd, mode, decay_norm)
        for opt in ("sgd", "adam")
        for rho, adaptive in ((0.0, False), (0.05, False), (0.1, True))
        for wd, mode, decay_norm in ((0.0, "coupled", True), (0.05, "coupled", False), (0.05, "decoupled", True),
                                     (0.05, "decoupled", False))
    )
]  # fmt: skip


def tensors_of(result):
    return [t for key in ("params", "norm_params") for pair in result[key] for t in pair]


def test_the_engines_layer_norm_is_torchs_forward_and_backward():
    g = torch.Generator().manual_seed(0)
    k, rows, width = 3, 5, 12
    z = torch.randn(k, rows, width, generator=g, dtype=torch.float64) * 3 + 1
    gain = torch.randn(k, 1, width, generator=g, dtype=torch.float64)
    bias = torch.randn(k, 1, width, generator=g, dtype=torch.float64)
    dy = torch.randn(k, rows, width, generator=g, dtype=torch.float64)
    out, normed, rstd = z.clone(), torch.empty_like(z), torch.empty(k, rows, 1, dtype=z.dtype)
    model.layer_norm(out, gain, bias, (normed, rstd))
    grad_gain, grad_bias, dz = torch.empty_like(gain), torch.empty_like(bias), dy.clone()
    engine_net._layer_norm_backward(dz, gain, grad_gain, grad_bias, normed, rstd, torch.empty_like(z))
    for i in range(k):  # each cell: torch.nn.LayerNorm with its own gain and bias, backward by autograd
        ln = torch.nn.LayerNorm(width, dtype=torch.float64)
        with torch.no_grad():
            ln.weight.copy_(gain[i, 0])
            ln.bias.copy_(bias[i, 0])
        x = z[i].clone().requires_grad_(True)
        want = ln(x)
        want.backward(dy[i])
        torch.testing.assert_close(out[i], want.detach(), rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(dz[i], x.grad, rtol=1e-10, atol=1e-12)
        torch.testing.assert_close(grad_gain[i, 0], ln.weight.grad, rtol=1e-10, atol=1e-12)
        torch.testing.assert_close(grad_bias[i, 0], ln.bias.grad, rtol=1e-10, atol=1e-12)


# float64 tightly, float32 to rounding, as test_engine's plain cells. The oracle's steps, one cell at a time, are
# most of this file's time: the fast tier checks 20 steps (into the third epoch), the slow tier 50 (float32) and
# 100 (float64).
@pytest.mark.parametrize(
    ("dtype", "tol", "steps"),
    [
        ("float32", 1e-4, 20),
        ("float64", 1e-9, 20),
        pytest.param("float32", 1e-4, 50, marks=pytest.mark.slow),
        pytest.param("float64", 1e-9, 100, marks=pytest.mark.slow),
    ],
)
def test_norm_cells_agree_with_the_oracle(split, dtype, tol, steps):
    cells = [replace(c, dtype=dtype) for c in VARIANTS]
    got = train_in_order(cells, split, max_steps=steps, return_params=True)
    for c, g in zip(cells, got, strict=True):
        want = train_cell(c, split, max_steps=steps, return_params=True)
        assert g["steps"] == want["steps"] == steps and not g["diverged"], c
        for x, y in zip(tensors_of(g), tensors_of(want), strict=True):
            torch.testing.assert_close(x, y, rtol=tol, atol=tol, msg=lambda m, c=c: f"{c}: {m}")
        assert g["test_mse"] == pytest.approx(want["test_mse"], rel=tol), c


def test_a_norm_cell_gives_the_same_bits_alone_and_in_any_block(split):
    cells = [cell("sgd", seed=s, lr=lr, wd=wd) for s in (0, 1) for lr in (0.02, 0.05) for wd in (0.0, 1e-2)]
    together = train_in_order(cells, split, max_steps=3 * SPE, return_params=True)
    for c, got in zip(cells, together, strict=True):
        alone = train_in_order([c], split, max_steps=3 * SPE, return_params=True)[0]
        assert got["test_mse"] == alone["test_mse"]
        assert all(torch.equal(x, y) for x, y in zip(tensors_of(got), tensors_of(alone), strict=True))


def test_wd_norm_params_decides_whether_the_gains_and_biases_decay(split):
    decayed, kept = (cell("sgd", wd=0.5, wd_norm_params=flag, lr=0.01) for flag in (True, False))
    a, b = train_in_order([decayed, kept], split, max_steps=2 * SPE, return_params=True)
    gains_a, gains_b = a["norm_params"][0][0], b["norm_params"][0][0]
    assert gains_a.mean() < gains_b.mean()  # decay pulls the gains (1 at init) towards 0
    # a norm=none cell ignores the setting: its unused-settings form is the default one
    plain = replace(decayed, norm="none", wd_norm_params=False)
    assert plain.without_unused_settings() == replace(plain, wd_norm_params=True)
    assert kept.without_unused_settings() == kept


def test_a_norm_cell_goes_on_from_a_shorter_runs_state_to_the_same_bits(split):
    long, short = cell("adam", epochs=4, t_max=2, wd=1e-2), cell("adam", epochs=2, t_max=2, wd=1e-2)
    state = train_in_order([short], split, return_state=True)[0]["state"]
    assert len(state["stack"]) == 10  # W, b, gain, bias, W, b, gain, bias, W, b
    resumed = next(iter(engine_train([long], split, [state])))
    whole = train_in_order([long], split, return_params=True)[0]
    assert resumed["test_mse"] == whole["test_mse"]
    assert all(torch.equal(x, y) for x, y in zip(tensors_of(resumed), tensors_of(whole), strict=True))


def engine_train(cells, split, states):
    from genboost.train.engine import train_blocks

    return [r for _, results in train_blocks(cells, split, return_params=True, start_states=states) for r in results]


def test_curve_and_result_record_each_hidden_layers_weight_norm_and_effective_lr(split):
    normed, plain = cell("sgd", epochs=4, t_max=2), cell("sgd", epochs=4, t_max=2, norm="none", seed=1)
    results = train_in_order([normed, plain], split, curve_every=2, return_params=True)
    for c, r in zip((normed, plain), results, strict=True):
        assert [p["epoch"] for p in r["curve"]] == [2, 4]
        w1, w2 = (torch.linalg.vector_norm(w).item() for w, _ in r["params"][:2])
        assert r["layers"]["weight_norm_l1"] == pytest.approx(w1) and r["layers"]["weight_norm_l2"] == pytest.approx(w2)
        assert r["curve"][-1]["weight_norm_l1"] == r["layers"]["weight_norm_l1"]
        if c.normed:  # lr of the last epoch (cosine: epoch 3 of t_max 2 is back up at half the lr)
            assert r["layers"]["eff_lr_l2"] == pytest.approx(c.lr / 2 / w2**2, rel=1e-6)
            assert r["curve"][0]["eff_lr_l1"] != r["curve"][1]["eff_lr_l1"]
        else:
            assert r["layers"]["eff_lr_l1"] is None and r["curve"][0]["eff_lr_l2"] is None
        record = jobs.make_record(c, {**r, "params": None}, {})
        assert record["layers"] == r["layers"]


def test_the_store_keeps_and_checks_the_norm_params(tmp_path, split):
    c = cell("sgd")
    r = train_in_order([c], split, max_steps=3, return_params=True)[0]
    store = CellStore(tmp_path)
    store.put_weights("k1", r["params"], r["norm_params"])
    store.put_weights("k2", r["params"])  # a norm model's entry without its norm params: refused for it
    assert store.get_weights("k2", c.hidden, c.dtype) is not None
    assert store.get_weights("k2", c.hidden, c.dtype, "layer") is None
    got = store.get_norm_weights("k1", c.hidden, c.dtype)
    assert all(
        torch.equal(x, y) for (a, b), (p, q) in zip(got, r["norm_params"], strict=True) for x, y in ((a, p), (b, q))
    )


def test_wd_and_norm_sweeps_norm_and_its_plain_cells_are_mains():
    config = repo_config()
    assert config["experiments"]["wd_and_norm"]["enabled"] is False
    cfg = copy.deepcopy(config)
    cfg["experiments"]["wd_and_norm"]["enabled"] = True
    study = Study.from_config(checked_config(cfg))
    main, both = study.experiment("main"), study.experiment("wd_and_norm")
    assert both.sweep == {"norm": ("none", "layer")} and both.axes[-2] == "norm"
    plain = [c for c in both.cells() if c.norm == "none"]
    assert len(plain) == len(both.cells()) // 2 and set(plain) <= set(main.cells())
    context = {"code": "same", "data_sha256": "same"}  # one preprocessing, so one data context
    assert main.data_id == both.data_id
    assert {jobs.result_key(c.to_dict(), context) for c in plain} <= {
        jobs.result_key(c.to_dict(), context) for c in main.cells()
    }
    normed = next(c for c in both.cells() if c.normed)
    assert "/norm=layer/seed=" in wiring.metrics_path(both, "results", normed)
    # wd_norm_params reaches a normed cell and leaves the plain ones alone
    cfg["train"]["wd_norm_params"] = False
    off = Study.from_config(checked_config(cfg)).experiment("wd_and_norm")
    assert all(not c.wd_norm_params for c in off.cells() if c.normed)
    assert {c for c in off.cells() if not c.normed} == set(plain)


def test_an_unknown_norm_is_refused_by_the_schema():
    config = repo_config()
    config["model"]["norm"] = "batch"
    with pytest.raises(Exception, match="batch"):
        checked_config(config)


def test_an_unknown_norm_is_refused_by_both_trainers(split):
    bad = cell("sgd", norm="batch")
    with pytest.raises(ValueError, match=r"cells\[0\]\.norm must be one of"):
        train_in_order([bad], split, max_steps=1)
    with pytest.raises(ValueError, match="cell.norm must be one of"):
        train_cell(bad, split, max_steps=1)
