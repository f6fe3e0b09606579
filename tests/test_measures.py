"""Generalization measures: PAC-Bayes sigmas against closed forms, block against one-at-a-time, norms by hand."""

import math

import numpy as np
import pytest
import torch
from engine_helpers import train_in_order
from scipy.optimize import brentq

from genboost.measures import pacbayes
from genboost.measures.noisy_mse import NoisyMSE, Shares, draws_of
from genboost.measures.pacbayes import MEASURE_KEYS, FlatnessSettings, block_measures, initializations
from genboost.train.model import NORM_EPS, Cell, Split, init_norm_params, init_params, layer_sizes, model_tensors

pytestmark = pytest.mark.usefixtures("one_torch_thread")
F64 = torch.float64


FINE = dict(iters=40, sigma_bounds=(1e-5, 1.0), mag_sigma_bounds=(1e-5, 1.0))  # bisection far finer than the checks


def random_data(n, f, seed=0, positive=False):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, f, generator=g, dtype=F64) if positive else torch.randn(n, f, generator=g, dtype=F64)
    return x, torch.randint(0, 7, (n,), generator=g).to(F64)


def test_linear_model_sigma_is_the_closed_form():
    # y = x w + b with u ~ N(0, s^2 I) on w and b: E MSE(w + u) - MSE(w) = s^2 (mean ||x||^2 + 1), for any w.
    x, y = random_data(200, 5)
    params = init_params(3, layer_sizes(5, ()), F64)
    out = block_measures([params], [params], x, y, settings=FlatnessSettings(max_increase=0.1, **FINE))[0]
    sigma2 = 0.1 / ((x**2).sum(1).mean().item() + 1)
    assert out["pacbayes_flatness"] == pytest.approx(1 / sigma2, rel=1e-9)


def test_linear_model_magnitude_aware_sigma_is_the_closed_form():
    # u_i ~ N(0, s^2 w_i^2 + eps^2): the increase is sum_j (s^2 w_j^2 + eps^2) mean x_j^2 + s^2 b^2 + eps^2.
    x, y = random_data(200, 5, seed=1)
    params = init_params(4, layer_sizes(5, ()), F64)
    eps = 0.05
    settings = FlatnessSettings(max_increase=0.1, mag_eps=eps, **FINE)
    out = block_measures([params], [params], x, y, settings=settings)[0]
    (w, b), m2 = params[0], (x**2).mean(0)
    scaled = (m2 * w[:, 0] ** 2).sum().item() + b.item() ** 2
    fixed = eps**2 * (m2.sum().item() + 1)
    assert out["pacbayes_mag_flatness"] == pytest.approx(scaled / (0.1 - fixed), rel=1e-9)


def positive_relu_net(h=4, seed=0):
    """3 -> h -> 1 with hidden pre-activations >= 3 on inputs in [0, 1]: the ReLU never cuts under the small
    noise of the tests (checked there), so the expected increase has a closed form."""
    g = torch.Generator().manual_seed(seed)
    w1 = torch.rand(3, h, generator=g, dtype=F64) * 0.5
    w2 = 10 + torch.rand(h, 1, generator=g, dtype=F64)  # large: the first layer's (sampled) noise dominates
    return [(w1, torch.full((h,), 3.0, dtype=F64)), (w2, torch.tensor([0.5], dtype=F64))]


def noise_variance(s: float, eps: float | None):
    """t -> the variance of the noise on each element of t: s^2 (plain) or s^2 t^2 + eps^2 (magnitude-aware)."""
    return (lambda t: s**2 * t**2 + eps**2) if eps is not None else (lambda t: np.full(t.shape, s**2))


def expected_increase(params, x, s: float, eps: float | None) -> float:
    """E MSE(w + u) - MSE(w) of the net with identity hidden activation. With a = x w1 + b1 and d = x u1 + u_b1
    (variance V): E ((a + d)(w2 + u2) + u_b2 - a w2)^2 = sum_k a_k^2 var(u2_k) + sum_k V_k (w2_k^2 + var(u2_k))
    + var(u_b2), averaged over the data."""
    (w1, b1), (w2, b2) = [(w.numpy(), b.numpy()) for w, b in params]
    var, xs = noise_variance(s, eps), x.numpy()
    a, v = xs @ w1 + b1, (xs**2) @ var(w1) + var(b1)
    return float(np.mean((a**2) @ var(w2)[:, 0] + v @ (w2[:, 0] ** 2 + var(w2)[:, 0]) + var(b2)[0]))


@pytest.mark.parametrize("eps", [None, 1e-3, 3e-3])
@pytest.mark.parametrize("shares", [3000, 999])
def test_hidden_layer_sigma_matches_the_closed_form_within_monte_carlo_error(eps, shares):
    # 3000 points dealt into `shares` shares, each share under its own antithetic pair (999: 4 rows a share, the
    # last ones padded). The sampled term (x u1 + u_b1) w2 is chi-square(1) per point and draw, so the estimated
    # increase is off by at most ~sqrt(2 / shares) (one std; 2.6% and 4.5%): the check allows three of them.
    n = 3000
    x, y = random_data(n, 3, positive=True)
    params = positive_relu_net()
    settings = FlatnessSettings(samples=2 * shares, max_increase=0.1, mag_eps=eps or 1e-3, **FINE)
    out = block_measures([params], [params], x, y, settings=settings)[0]
    target = brentq(lambda s: expected_increase(params, x, s, eps) - 0.1, 1e-6, 1.0)
    (w1, b1), _ = params
    hidden_noise_var = (x.numpy() ** 2) @ noise_variance(target, eps)(w1.numpy()) + noise_variance(target, eps)(
        b1.numpy()
    )
    assert (x @ w1 + b1).min().item() > 6 * math.sqrt(hidden_noise_var.max())  # the ReLU passes everything
    key = "pacbayes_flatness" if eps is None else "pacbayes_mag_flatness"
    assert out[key] == pytest.approx(target**-2, rel=3 * math.sqrt(2 / shares))


def trained_like_models(k, hidden=(16, 16), f=6, dtype=F64):
    """k MLPs: initializations moved by a seeded offset (not at init, so dist_from_init is not 0)."""
    models, inits = [], []
    for seed in range(k):
        init = init_params(seed, layer_sizes(f, hidden), dtype)
        g = torch.Generator().manual_seed(100 + seed)
        models.append([(w + 0.3 * torch.randn(w.shape, generator=g).to(dtype), b) for w, b in init])
        inits.append(init)
    return models, inits


@pytest.mark.parametrize("dtype", [torch.float32, F64])
def test_a_block_gives_each_model_what_it_gets_alone(dtype):
    x, y = random_data(150, 6)
    models, inits = trained_like_models(5, dtype=dtype)
    settings = FlatnessSettings(samples=8, iters=10)
    block = block_measures(models, inits, x.to(dtype), y.to(dtype), settings=settings)
    alone = [
        block_measures([m], [i], x.to(dtype), y.to(dtype), settings=settings)[0]
        for m, i in zip(models, inits, strict=True)
    ]
    assert block == alone
    assert all(set(r) == set(MEASURE_KEYS) and all(math.isfinite(v) for v in r.values()) for r in block)


def normed_models(k, hidden=(8, 4), f=6):
    """k models with a norm (float64): weights as `trained_like_models`, gains and norm biases moved from 1 and 0."""
    models, inits = trained_like_models(k, hidden, f)
    g = torch.Generator().manual_seed(7)
    start = init_norm_params(layer_sizes(f, hidden), F64)
    norms = [[(a + 0.2 * torch.randn(a.shape, generator=g, dtype=F64), b + 0.1) for a, b in start] for _ in range(k)]
    return models, inits, norms, [start] * k


def test_a_block_of_normed_models_gives_each_model_what_it_gets_alone():
    x, y = random_data(120, 6)
    models, inits, norms, norm_inits = normed_models(3)
    settings = FlatnessSettings(samples=8, iters=10)
    block = block_measures(models, inits, x, y, settings=settings, norm_list=norms, norm_init_list=norm_inits)
    alone = [
        block_measures([m], [i], x, y, settings=settings, norm_list=[n], norm_init_list=[n0])[0]
        for m, i, n, n0 in zip(models, inits, norms, norm_inits, strict=True)
    ]
    assert block == alone
    assert all(all(math.isfinite(v) for v in r.values()) for r in block)
    plain = block_measures(models, inits, x, y, settings=settings)
    assert [r["pacbayes_flatness"] for r in plain] != [r["pacbayes_flatness"] for r in block]


def test_a_normed_models_noisy_mse_is_the_direct_sum_through_torchs_layer_norm():
    """The estimator's mean MSE increase at one sigma against its definition, written out with torch.nn.functional:
    draw e perturbs every hidden tensor (gains and norm biases too) and is evaluated on share e % parts, the output
    layer's noise (variance sigma^2 per weight and for the bias) integrated out."""
    x, y = random_data(45, 6)
    models, _, norms, _ = normed_models(1, hidden=(5, 3))
    stacked = pacbayes.stack_params([model_tensors(models[0], norms[0])])
    parts, sigma, n = 3, 0.07, len(y)
    draws = draws_of(11, stacked[:-2], parts, twice=False)
    got = (
        NoisyMSE(stacked, True, Shares.of(x, y, parts), [draws], None)
        .increase(torch.tensor([sigma], dtype=F64))[0]
        .item()
    )

    def last_hidden(tensors, rows):
        h = x[rows]
        for j in range(0, len(tensors), 4):
            w, b, gain, bias = tensors[j : j + 4]
            h = torch.nn.functional.linear(h, w.T, b)
            h = torch.relu(torch.nn.functional.layer_norm(h, (h.shape[-1],), gain, bias, eps=NORM_EPS))
        return h

    w_out, b_out = stacked[-2][0], stacked[-1][0]
    plain = last_hidden([t[0] for t in stacked[:-2]], torch.arange(n))
    unperturbed = ((plain @ w_out + b_out).squeeze(-1) - y).square().mean().item()
    total = 0.0
    for e in range(2 * parts):
        rows = torch.arange(e % parts, n, parts)
        h = last_hidden([t[0] + sigma * d[e] for t, d in zip(stacked[:-2], draws, strict=True)], rows)
        err = (h @ w_out + b_out).squeeze(-1) - y[rows]
        total += err.square().sum().item() + sigma**2 * (h.square().sum().item() + len(rows))
    assert got == pytest.approx(total / (2 * n) - unperturbed, rel=1e-9)


def test_a_normed_models_weight_norm_and_distance_include_the_norm_params():
    x, y = random_data(40, 6)
    models, inits, norms, norm_inits = normed_models(1)
    out = block_measures(
        models, inits, x, y, settings=FlatnessSettings(iters=1), norm_list=norms, norm_init_list=norm_inits
    )[0]
    everything = torch.cat([t.flatten() for t in model_tensors(models[0], norms[0])])
    start = torch.cat([t.flatten() for t in model_tensors(inits[0], norm_inits[0])])
    assert out["weight_norm"] == pytest.approx(torch.linalg.vector_norm(everything).item(), rel=1e-12)
    assert out["dist_from_init"] == pytest.approx(torch.linalg.vector_norm(everything - start).item(), rel=1e-12)


def test_deterministic_and_leaves_the_global_rng_alone():
    x, y = random_data(100, 6)
    models, inits = trained_like_models(3)
    state = torch.random.get_rng_state()
    first = block_measures(models, inits, x, y)
    assert torch.equal(torch.random.get_rng_state(), state)
    assert block_measures(models, inits, x, y) == first
    other_seed = block_measures(models, inits, x, y, seeds=[1, 2, 3])
    assert [r["pacbayes_flatness"] for r in other_seed] != [r["pacbayes_flatness"] for r in first]


def test_weight_norm_and_distance_from_init_by_hand():
    x, y = random_data(50, 6)
    models, inits = trained_like_models(2)
    out = block_measures(models, inits, x, y, settings=FlatnessSettings(iters=2))
    for r, model, init in zip(out, models, inits, strict=True):
        norm = math.sqrt(sum(float((t**2).sum()) for wb in model for t in wb))
        dist = math.sqrt(
            sum(
                float(((t - t0) ** 2).sum())
                for wb, wb0 in zip(model, init, strict=True)
                for t, t0 in zip(wb, wb0, strict=True)
            )
        )
        assert r["weight_norm"] == pytest.approx(norm, rel=1e-12)
        assert r["dist_from_init"] == pytest.approx(dist, rel=1e-12)


def test_a_model_flatter_than_the_upper_bound_reads_as_the_last_step_below_it():
    x, y = random_data(100, 5)
    params = init_params(3, layer_sizes(5, ()), F64)
    settings = FlatnessSettings(max_increase=0.1, iters=6, sigma_bounds=(1e-4, 1e-2))  # true sigma ~0.13
    top = 1e-2 * (1e-4 / 1e-2) ** (1 / 2**6)
    assert block_measures([params], [params], x, y, settings=settings)[0]["pacbayes_flatness"] == pytest.approx(
        top**-2, rel=1e-9
    )


def test_diverged_models_get_none_and_leave_the_others_unchanged():
    x, y = random_data(80, 6)
    models, inits = trained_like_models(4)
    nan_model = [(w.clone(), b.clone()) for w, b in models[2]]
    nan_model[1][0][0, 0] = math.nan
    settings = FlatnessSettings(samples=4, iters=6)
    clean = block_measures(models, inits, x, y, settings=settings)
    out = block_measures([*models[:2], nan_model, models[3]], inits, x, y, [False, True, False, False], None, settings)
    assert out[1] == out[2] == dict.fromkeys(MEASURE_KEYS)
    assert out[0] == clean[0] and out[3] == clean[3]


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(samples=3), "samples must be an even int"),
        (dict(iters=0), "iters must be an int >= 1"),
        (dict(max_increase=0.0), "max_increase must be > 0"),
        (dict(sigma_bounds=(1.0, 0.1)), "sigma_bounds must be"),
        (dict(mag_eps=-1.0), "mag_eps must be >= 0"),
    ],
)
def test_bad_settings_fail_at_once(kwargs, message):
    with pytest.raises(ValueError, match=message):
        FlatnessSettings(**kwargs)


def test_mismatched_inputs_fail_at_once():
    x, y = random_data(20, 6)
    models, inits = trained_like_models(2)
    with pytest.raises(ValueError, match="init_list has 1 entries for 2 models"):
        block_measures(models, inits[:1], x, y)
    with pytest.raises(ValueError, match="x has 5 features"):
        block_measures(models, inits, x[:, :5], y)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_initializations_are_the_engines_starting_weights(dtype):
    x, y = random_data(40, 6)
    cells = [Cell("sgd", 1e-3, 0.0, 0.0, seed=s, epochs=1, hidden=(8, 4), dtype=dtype) for s in (0, 5)]
    untrained = train_in_order(cells, Split(x, y, x, y), max_steps=0, return_params=True)
    params, inits = [r["params"] for r in untrained], initializations(cells, 6)
    for p, i in zip(params, inits, strict=True):
        assert all(torch.equal(a, b) for wb, wb0 in zip(p, i, strict=True) for a, b in zip(wb, wb0, strict=True))
    out = block_measures(
        params, inits, x.to(params[0][0][0]), y.to(params[0][0][0]), settings=FlatnessSettings(iters=2)
    )
    assert [r["dist_from_init"] for r in out] == [0.0, 0.0]
