"""Flatness measures: the Hessian estimate against the exact Hessian, SAM sharpness against a hand computation."""

import math

import numpy as np
import pytest
import torch

from genboost.measures.sharpness import (
    _prepare,
    hessian_vector_product,
    loss,
    sam_sharpness,
    top_hessian_eigenvalue,
)
from genboost.train.model import NORM_EPS, Cell, Split, init_norm_params, init_params, layer_sizes
from genboost.train.oracle import train_cell


def data(n, f, seed=0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, f, generator=g, dtype=dtype)
    y = torch.randint(0, 7, (n,), generator=g).to(dtype)
    return x, y


def flat_loss(params, x, y, norm_params=()):
    """(the params as one vector, the loss as a function of that vector)."""
    problem = _prepare(params, x, y, norm_params)
    return problem.vec, problem.loss


def exact_top_eig(params, x, y) -> float:
    vec, of_vec = flat_loss(params, x, y)
    h = torch.autograd.functional.hessian(of_vec, vec)
    assert torch.allclose(h, h.T)
    eigs = torch.linalg.eigvalsh(h)
    return eigs[eigs.abs().argmax()].item()


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_power_iteration_matches_the_exact_hessian_on_a_tiny_mlp(seed):
    x, y = data(40, 3, seed)
    params = init_params(seed, layer_sizes(3, (4,)), torch.float64)  # 3 -> 4 -> 1: 21 parameters
    exact = exact_top_eig(params, x, y)
    estimate = top_hessian_eigenvalue(params, x, y, iters=2000, tol=1e-12)
    assert estimate == pytest.approx(exact, rel=1e-6)


def test_power_iteration_on_an_indefinite_hessian():
    # Params far from a minimum: eigenvalues from -4.7 to 15.2; the estimate must still be the exact top one.
    x, y = data(30, 3, 5)
    params = [(w * 4, b) for w, b in init_params(7, layer_sizes(3, (4,)), torch.float64)]
    vec, of_vec = flat_loss(params, x, y)
    eigs = torch.linalg.eigvalsh(torch.autograd.functional.hessian(of_vec, vec))
    assert eigs[0] < -1 and eigs[-1] > 1
    assert top_hessian_eigenvalue(params, x, y, iters=5000, tol=1e-13) == pytest.approx(
        exact_top_eig(params, x, y), rel=1e-6
    )


def linear_model(seed=3):
    g = torch.Generator().manual_seed(seed)
    return [(torch.randn(3, 1, generator=g, dtype=torch.float64), torch.randn(1, generator=g, dtype=torch.float64))]


def test_linear_model_by_hand():
    """One layer, no ReLU: loss = mean((Xw + b - y)^2), gradient 2/n A^T r, Hessian 2/n A^T A with A = [X 1]."""
    x, y = data(25, 3, 4)
    params = linear_model()
    a = np.hstack([x.numpy(), np.ones((25, 1))])
    theta = np.concatenate([params[0][0].numpy().ravel(), params[0][1].numpy()])
    yy = y.numpy()

    def hand_loss(t):
        return np.mean((a @ t - yy) ** 2)

    grad = 2 / 25 * a.T @ (a @ theta - yy)
    for r, s in sam_sharpness(params, x, y, radii=(0.0, 0.05, 0.5)).items():
        expected = hand_loss(theta + r * grad / np.linalg.norm(grad)) - hand_loss(theta)
        assert s == pytest.approx(expected, rel=1e-10, abs=1e-14)
    top = np.linalg.eigvalsh(2 / 25 * a.T @ a).max()
    assert top_hessian_eigenvalue(params, x, y, iters=1000, tol=1e-13) == pytest.approx(top, rel=1e-8)
    assert loss(params, x, y).item() == pytest.approx(hand_loss(theta), rel=1e-12)


@pytest.fixture(scope="module")
def trained():
    x, y = data(120, 5, 9, torch.float32)
    split = Split(x[:100], y[:100], x[100:], y[100:])
    cell = Cell(optimizer="adam", lr=3e-3, wd=0.0, rho=0.0, seed=0, epochs=30, batch_size=20, hidden=(16, 16))
    result = train_cell(cell, split, return_params=True)
    return result["params"], split.x_train, split.y_train, result["train_mse"]


def test_trained_model_sharpness_is_non_negative_and_grows_with_the_radius(trained):
    params, x, y, train_mse = trained
    assert loss(params, x, y).item() == pytest.approx(train_mse, rel=1e-5)  # the forward pass training ran
    sharp = sam_sharpness(params, x, y, radii=(0.01, 0.05, 0.1))
    assert set(sharp) == {0.01, 0.05, 0.1} and 0 <= sharp[0.01] < sharp[0.05] < sharp[0.1]
    top = top_hessian_eigenvalue(params, x, y, iters=100)
    assert top > 0  # near a minimum the dominant curvature is positive
    assert all(type(v) is float and math.isfinite(v) for v in (*sharp.values(), top))


def test_deterministic_and_leaves_the_global_rng_and_params_alone(trained):
    params, x, y, _ = trained
    before = [(w.clone(), b.clone()) for w, b in params]
    rng = torch.get_rng_state()
    first, second = (
        (sam_sharpness(params, x, y, radii=(0.01, 0.05, 0.1)), top_hessian_eigenvalue(params, x, y, iters=50))
        for _ in range(2)
    )
    assert first == second
    assert torch.equal(rng, torch.get_rng_state())
    assert all(torch.equal(w, w0) and torch.equal(b, b0) for (w, b), (w0, b0) in zip(params, before, strict=True))
    other_start = top_hessian_eigenvalue(params, x, y, iters=300, tol=1e-9, seed=1)
    assert other_start == pytest.approx(top_hessian_eigenvalue(params, x, y, iters=300, tol=1e-9), rel=1e-3)


def test_stationary_point_has_zero_sharpness():
    x = torch.zeros(10, 2, dtype=torch.float64)
    y = torch.tensor([0.0, 2.0] * 5, dtype=torch.float64)
    # Constant inputs and the exact mean (1.0) as prediction: the exact minimum, g = 0 to the last bit.
    params = [(torch.zeros(2, 1, dtype=torch.float64), torch.ones(1, dtype=torch.float64))]
    assert sam_sharpness(params, x, y, radii=(0.01, 0.05, 0.1)) == {0.01: 0.0, 0.05: 0.0, 0.1: 0.0}


def test_bad_input_is_refused():
    x, y = data(10, 3, 1)
    params = linear_model()
    with pytest.raises(ValueError, match="NaN or inf"):
        sam_sharpness([(params[0][0] * math.nan, params[0][1])], x, y, radii=(0.1,))
    with pytest.raises(ValueError, match="features"):
        top_hessian_eigenvalue(params, x[:, :2], y, iters=5)
    with pytest.raises(ValueError, match="expected x"):
        sam_sharpness(params, x, y[:5], radii=(0.1,))
    with pytest.raises(ValueError, match="radii"):
        sam_sharpness(params, x, y, radii=(-0.1,))
    with pytest.raises(ValueError, match="iters"):
        top_hessian_eigenvalue(params, x, y, iters=0)


@pytest.mark.parametrize("hidden", [(), (4,), (5, 3)])
def test_hessian_vector_product_equals_autograd(hidden):
    """The R-operator's H v against autograd's double backward, on random directions (float64)."""
    x, y = data(30, 3, 11)
    params = [(w * 2, b + 0.1) for w, b in init_params(4, layer_sizes(3, hidden), torch.float64)]
    vec, of_vec = flat_loss(params, x, y)
    hvp = hessian_vector_product(params, x, y)
    g = torch.Generator().manual_seed(0)
    for _ in range(3):
        v = torch.randn(vec.shape, generator=g, dtype=torch.float64)
        _, want = torch.autograd.functional.hvp(of_vec, vec, v)
        torch.testing.assert_close(hvp(v), want, rtol=1e-12, atol=1e-12)


# A model with a norm, against a loss written apart with torch's own layers (nn.functional's linear and
# layer_norm) and differentiated by autograd: the measures run `model.forward` and, for the Hessian, torch.func.


def normed_model(seed, hidden=(5, 3), f=3):
    """Params away from init, gains and norm biases away from 1 and 0 (float64)."""
    sizes, g = layer_sizes(f, hidden), torch.Generator().manual_seed(100 + seed)
    moved = lambda t: t + 0.3 * torch.randn(t.shape, generator=g, dtype=torch.float64)  # noqa: E731
    params = [(moved(w) * 2, moved(b)) for w, b in init_params(seed, sizes, torch.float64)]
    return params, [(moved(gain), moved(bias)) for gain, bias in init_norm_params(sizes, torch.float64)]


def torch_layers_loss(params, norm_params, x, y):
    """The loss as a function of the flat params (W0, b0, gain0, bias0, W1, ...), by torch.nn.functional."""
    hidden_norms = [*norm_params, ()]  # the output layer has none
    shapes = [t.shape for wb, gb in zip(params, hidden_norms, strict=True) for t in (*wb, *gb)]

    def of_vec(vec):
        tensors = [c.view(s) for c, s in zip(vec.split([math.prod(s) for s in shapes]), shapes, strict=True)]
        h = x
        for layer in range(len(params)):
            w, b, *tensors = tensors
            h = torch.nn.functional.linear(h, w.T, b)
            if layer < len(params) - 1:
                gain, bias, *tensors = tensors
                h = torch.relu(torch.nn.functional.layer_norm(h, (h.shape[-1],), gain, bias, eps=NORM_EPS))
        return torch.mean((h.squeeze(-1) - y) ** 2)

    return of_vec


@pytest.mark.parametrize("seed", [0, 1])
def test_a_normed_models_hvp_equals_autograd_through_torchs_layer_norm(seed):
    x, y = data(30, 3, seed)
    params, norms = normed_model(seed)
    vec, of_vec = flat_loss(params, x, y, norms)
    want_loss = torch_layers_loss(params, norms, x, y)
    assert of_vec(vec).item() == pytest.approx(want_loss(vec).item(), rel=1e-12)
    hvp = hessian_vector_product(params, x, y, norm_params=norms)
    g = torch.Generator().manual_seed(seed)
    for _ in range(3):
        v = torch.randn(vec.shape, generator=g, dtype=torch.float64)
        _, want = torch.autograd.functional.hvp(want_loss, vec, v)
        torch.testing.assert_close(hvp(v), want, rtol=1e-10, atol=1e-12)


def test_a_normed_models_top_eigenvalue_and_sharpness_match_autograd_through_torchs_layer_norm():
    x, y = data(40, 3, 2)
    params, norms = normed_model(2, hidden=(4,))
    vec, _ = flat_loss(params, x, y, norms)
    want_loss = torch_layers_loss(params, norms, x, y)
    eigs = torch.linalg.eigvalsh(torch.autograd.functional.hessian(want_loss, vec))
    top = eigs[eigs.abs().argmax()].item()
    got = top_hessian_eigenvalue(params, x, y, iters=3000, tol=1e-13, norm_params=norms)
    assert got == pytest.approx(top, rel=1e-6)
    w = vec.clone().requires_grad_(True)
    (g,) = torch.autograd.grad(want_loss(w), w)
    base = want_loss(vec).item()
    for r, s in sam_sharpness(params, x, y, radii=(0.01, 0.1), norm_params=norms).items():
        assert s == pytest.approx(want_loss(vec + r * g / g.norm()).item() - base, rel=1e-8, abs=1e-14)
