"""Flatness of a trained model at the end of training, measured on the training set (full batch).

Two measures of the flat-minima question, both of the training loss (mean squared error) of the MLP's one
forward pass (`genboost.train.model.forward`; params [(W [in, out], b [out]), ...] and, for a model with a
norm, norm_params [(gain [out], bias [out]), ...] per hidden layer):

- SAM sharpness: loss(w + r * g / ||g||) - loss(w), the worst-case loss increase in an r-ball as SAM's
  one-step ascent estimates it (g the full-batch gradient, one norm over all parameters);
- the top Hessian eigenvalue (largest in magnitude) by power iteration on Hessian-vector products.

Everything runs in the params' dtype, full batch, from a seeded start vector: same inputs, same numbers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from genboost.train.model import forward, layers_of, model_tensors

HESSIAN_TOL = 1e-6  # power iteration stops once the Rayleigh quotient moves by less, relatively


def loss(params, x: torch.Tensor, y: torch.Tensor, norm_params=()) -> torch.Tensor:
    """Mean squared error over the whole set (a 0-dim tensor, differentiable in the params)."""
    return _mse(layers_of(model_tensors(params, norm_params), bool(norm_params)), x, y)


def _mse(layers, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return torch.mean((forward(layers, x)[1] - y) ** 2)


def _check(params, norm_params, x: torch.Tensor, y: torch.Tensor) -> None:
    if not params:
        raise ValueError("sharpness: params is empty")
    if x.ndim != 2 or y.ndim != 1 or x.shape[0] != y.shape[0]:
        raise ValueError(f"sharpness: expected x [n, f] and y [n], got x {tuple(x.shape)} and y {tuple(y.shape)}")
    if x.shape[1] != params[0][0].shape[0]:
        raise ValueError(f"sharpness: x has {x.shape[1]} features but the first layer takes {params[0][0].shape[0]}")
    if not all(torch.isfinite(p).all() for p in model_tensors(params, norm_params)):
        raise ValueError("sharpness: params contain NaN or inf (a diverged model has no flatness to measure)")


def _flat(params, norm_params=()) -> tuple[torch.Tensor, list[torch.Size]]:
    """All parameters as one detached vector in `model.param_shapes` order (W0, b0, [gain0, bias0,] W1, ...) and
    their shapes."""
    tensors = model_tensors(params, norm_params)
    return torch.cat([p.detach().reshape(-1) for p in tensors]), [p.shape for p in tensors]


def _unflat(vec: torch.Tensor, shapes: list[torch.Size]) -> list[torch.Tensor]:
    tensors, start = [], 0
    for shape in shapes:
        n = math.prod(shape)
        tensors.append(vec[start : start + n].reshape(shape))
        start += n
    return tensors


@dataclass
class _Problem:
    """Checked inputs of a measure: flat params, their shapes, whether a norm follows each hidden layer, data in
    their dtype and on their device."""

    vec: torch.Tensor
    shapes: list[torch.Size]
    normed: bool
    x: torch.Tensor
    y: torch.Tensor

    def layers(self, v: torch.Tensor) -> list[tuple]:
        """The model's layers (`model.forward`'s) with the flat params v."""
        return layers_of(_unflat(v, self.shapes), self.normed)

    def loss(self, v: torch.Tensor) -> torch.Tensor:
        return _mse(self.layers(v), self.x, self.y)


def _prepare(params, x, y, norm_params=()) -> _Problem:
    _check(params, norm_params, x, y)
    vec, shapes = _flat(params, norm_params)
    return _Problem(vec, shapes, bool(norm_params), x.to(vec), y.to(vec))


def _gradient(p: _Problem) -> tuple[torch.Tensor, torch.Tensor]:
    """(loss, gradient) at the params."""
    w = p.vec.clone().requires_grad_(True)
    value = p.loss(w)
    (g,) = torch.autograd.grad(value, w)
    return value.detach(), g


def _sharpness(p: _Problem, base: torch.Tensor, g: torch.Tensor, radii) -> dict[float, float]:
    norm = torch.linalg.vector_norm(g)
    out = {}
    with torch.no_grad():
        for r in radii:
            if not r >= 0:
                raise ValueError(f"sam_sharpness: radii must be >= 0, got {r!r}")
            out[r] = 0.0 if norm == 0 else (p.loss(p.vec + (r / norm) * g) - base).item()
    return out


def sam_sharpness(params, x: torch.Tensor, y: torch.Tensor, radii, norm_params=()) -> dict[float, float]:
    """radius -> loss(w + r * g / ||g||) - loss(w), with g the full-batch gradient at w (over every parameter, a
    norm's gains and biases included).

    A zero gradient (an exact stationary point) has no ascent direction: every sharpness is then 0.
    """
    p = _prepare(params, x, y, norm_params)
    base, g = _gradient(p)
    return _sharpness(p, base, g, radii)


def hessian_vector_product(params, x: torch.Tensor, y: torch.Tensor, norm_params=()):
    """v -> H v (flat vectors, in `_flat`'s order) for the loss of the model on (x, y).

    Without a norm by Pearlmutter's R-operator: directional derivatives pushed through one forward and one
    backward pass of the MLP, the same numbers as autograd's double backward (ReLU's second derivative is 0),
    with no graph of the backward to record and replay (1.5-2x faster here). With a norm, whose second
    derivative the R-operator does not cover, by autograd's double backward through `model.forward`.
    The forward is run once, here.
    """
    return _hvp(_prepare(params, x, y, norm_params))


def _hvp(p: _Problem):
    return _double_backward_hvp(p) if p.normed else _r_operator_hvp(p)


def _double_backward_hvp(p: _Problem):
    """H v by autograd: the gradient's graph recorded once, then one backward through it per product. (Not
    torch.func: its first transform imports torch._dynamo, seconds in every measure process.)"""
    w = p.vec.clone().requires_grad_(True)
    (g,) = torch.autograd.grad(p.loss(w), w, create_graph=True)
    return lambda v: torch.autograd.grad(g, w, v, retain_graph=True)[0].detach()


def _r_operator_hvp(p: _Problem):
    layers, x, y = p.layers(p.vec), p.x, p.y
    last = len(layers) - 1
    # Each layer's input; a hidden layer's input is > 0 exactly where ReLU passes gradients. The same function as
    # `model.forward`, its products fused with their biases (addmm) as the R-operator's below are: it rounds them
    # differently from forward's matmul + add, and the Hessian's numbers were measured so (tests/test_sharpness.py
    # checks H v against autograd's through `forward`).
    inputs = [x]
    for i, (w, b, *_) in enumerate(layers):
        z = torch.addmm(b, inputs[-1], w)
        if i < last:
            inputs.append(z.clamp_min(0))

    def through_relu(t: torch.Tensor, layer: int) -> torch.Tensor:
        """t where layer's input is > 0, else 0 (ReLU's derivative applied to t, in place)."""
        return torch.ops.aten.threshold_backward.grad_input(t, inputs[layer], 0, grad_input=t)

    deltas = [2 * (z - y.unsqueeze(1)) / len(y)]  # d loss / d z of each layer, from the last
    for i in range(last, 0, -1):
        deltas.insert(0, through_relu(deltas[0] @ layers[i][0].T, i))

    def hvp(v: torch.Tensor) -> torch.Tensor:
        dirs = p.layers(v)
        r_inputs = [None]  # R(input) of each layer: 0 for the data
        for i, ((w, *_), (vw, vb, *_)) in enumerate(zip(layers, dirs, strict=True)):
            r_z = torch.addmm(vb, inputs[i], vw)
            if r_inputs[i] is not None:
                r_z.addmm_(r_inputs[i], w)
            if i < last:
                r_inputs.append(through_relu(r_z, i + 1))
        r_delta = 2 * r_z / len(y)
        out = []
        for i in range(last, -1, -1):
            r_w = inputs[i].T @ r_delta
            if r_inputs[i] is not None:
                r_w.addmm_(r_inputs[i].T, deltas[i])
            out = [r_w, r_delta.sum(0)] + out
            if i:
                r_delta = through_relu((r_delta @ layers[i][0].T).addmm_(deltas[i], dirs[i][0].T), i)
        return torch.cat([t.reshape(-1) for t in out])

    return hvp


def _power_iteration(p: _Problem, iters: int, tol: float, seed: int) -> float:
    if iters < 1:
        raise ValueError(f"top_hessian_eigenvalue: iters must be >= 1, got {iters!r}")
    hvp = _hvp(p)
    gen = torch.Generator().manual_seed(seed)  # its own stream: the global RNG is left alone
    v = torch.randn(p.vec.shape, generator=gen, dtype=torch.float64).to(p.vec)
    v = v / torch.linalg.vector_norm(v)
    eig = math.nan
    for _ in range(iters):
        hv = hvp(v)
        new = torch.dot(v, hv).item()  # Rayleigh quotient of the unit vector v
        hv_norm = torch.linalg.vector_norm(hv)
        if hv_norm == 0:
            return 0.0
        v = hv / hv_norm
        converged = abs(new - eig) <= tol * abs(new)
        eig = new
        if converged:
            break
    return eig


def top_hessian_eigenvalue(
    params, x: torch.Tensor, y: torch.Tensor, iters: int = 50, tol: float = HESSIAN_TOL, seed: int = 0, norm_params=()
) -> float:
    """The Hessian's eigenvalue of largest magnitude (signed), by power iteration on Hessian-vector products.

    Iteration stops after `iters` products or once the Rayleigh quotient moves by less than `tol`
    relative to itself. On trained models of the study the top eigenvalue (~100) stands well clear of
    the rest and this converges in a few products; where two eigenvalues of opposite sign have nearly
    the same magnitude (far from a minimum, with large residuals) power iteration converges slowly
    and `iters` caps it.
    """
    return _power_iteration(_prepare(params, x, y, norm_params), iters, tol, seed)
