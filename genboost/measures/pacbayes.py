"""Generalization measures of trained models on the training set (Jiang et al., ICLR 2020, arXiv 1912.02178).

Per model of a block, all K at once (each layer's weights stacked [K, in, out], evaluated with torch.bmm):

- `pacbayes_flatness`: 1 / sigma^2 for the largest sigma whose Monte Carlo mean training MSE of w + u,
  u ~ N(0, sigma^2 I) over every weight and bias, exceeds the unperturbed MSE by at most `max_increase`;
- `pacbayes_mag_flatness`: the same with magnitude-aware noise u_i ~ N(0, sigma^2 w_i^2 + eps^2);
- `weight_norm`: the L2 norm of all weights and biases; `dist_from_init`: the L2 distance from the initialization.

sigma is found by bisection of log(sigma) between bounds: after `iters` steps it is known to within a factor
(high / low) ** (1 / 2**iters), and the lower end (a sigma that passed) is reported, so a model flatter than the
upper bound reads as the upper bound and one sharper than the lower bound as the lower bound. Every step reuses
the same standard-normal draws (common random numbers): the estimated increase is one fixed function of sigma
and the search deterministic. The draws come from a torch.Generator per model (seed NOISE_SEED unless given, so
that every model sees the same draws), never the global RNG. The magnitude-aware noise is drawn as
sigma |w_i| z_i + eps z'_i, which has exactly the variance sigma^2 w_i^2 + eps^2. How the mean MSE under the
noise is estimated (antithetic pairs, one per share of the training set, the output layer's noise integrated
out): `_NoisyMSE`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from genboost.train.model import init_params, layer_sizes, torch_dtype

MEASURE_KEYS = ("pacbayes_flatness", "pacbayes_mag_flatness", "weight_norm", "dist_from_init")
NOISE_SEED = 0x9AC_BA7E5
CHUNK_MODELS = 2  # models evaluated together: their activations (2 n x width each) stay in the cache


@dataclass(frozen=True)
class FlatnessSettings:
    """How the PAC-Bayes sigmas are searched (defaults: benchmarks/bench_measures.py).

    max_increase is in MSE units (labels are ordinal 0..6; trained models reach a training MSE of ~0.05-0.5).
    samples is even: samples / 2 antithetic pairs (z, -z), one per share of the training set. The bounds of
    sigma are absolute for the plain noise, relative to each weight's magnitude for the magnitude-aware noise.
    """

    samples: int = 32
    iters: int = 8  # over 3 decades: sigma to within 10 ** (3 / 256), 2.7%
    max_increase: float = 0.1
    sigma_bounds: tuple[float, float] = (1e-3, 1.0)
    mag_sigma_bounds: tuple[float, float] = (1e-2, 10.0)
    mag_eps: float = 1e-3

    def __post_init__(self):
        if not isinstance(self.iters, int) or self.iters < 1:
            raise ValueError(f"FlatnessSettings: iters must be an int >= 1, got {self.iters!r}")
        if not isinstance(self.samples, int) or self.samples < 2 or self.samples % 2:
            raise ValueError(
                f"FlatnessSettings: samples must be an even int >= 2 (antithetic pairs), got {self.samples!r}"
            )
        if not self.max_increase > 0:
            raise ValueError(f"FlatnessSettings: max_increase must be > 0, got {self.max_increase!r}")
        for name in ("sigma_bounds", "mag_sigma_bounds"):
            lo, hi = getattr(self, name)
            if not 0 < lo < hi < math.inf:
                raise ValueError(f"FlatnessSettings: {name} must be (low, high) with 0 < low < high, got {(lo, hi)!r}")
        if not self.mag_eps >= 0:
            raise ValueError(f"FlatnessSettings: mag_eps must be >= 0, got {self.mag_eps!r}")


def block_measures(
    params_list: Sequence[list[tuple[torch.Tensor, torch.Tensor]]],
    init_list: Sequence[list[tuple[torch.Tensor, torch.Tensor]]],
    x: torch.Tensor,
    y: torch.Tensor,
    diverged: Sequence[bool] | None = None,
    seeds: Sequence[int] | None = None,
    settings: FlatnessSettings = FlatnessSettings(),
) -> list[dict[str, float | None]]:
    """One dict of MEASURE_KEYS per model of the block (plain floats).

    params_list[i] / init_list[i]: model i's trained and initial (W [in, out], b [out]) per layer, all of one
    shape and dtype. A model flagged in `diverged`, or with a non-finite parameter, gets None everywhere (as
    does any measure that comes out non-finite). seeds[i] seeds model i's noise (default NOISE_SEED for all).
    """
    k = len(params_list)
    diverged = list(diverged) if diverged is not None else [False] * k
    seeds = list(seeds) if seeds is not None else [NOISE_SEED] * k
    for name, values in (("init_list", init_list), ("diverged", diverged), ("seeds", seeds)):
        if len(values) != k:
            raise ValueError(f"block_measures: {name} has {len(values)} entries for {k} models")
    results: list[dict[str, float | None]] = [dict.fromkeys(MEASURE_KEYS) for _ in range(k)]
    ok = [i for i in range(k) if not diverged[i] and _finite(params_list[i])]
    if not ok:
        return results
    stacked = stack_params([params_list[i] for i in ok])
    _check_data(stacked, x, y)
    x, y = x.to(stacked[0]), y.to(stacked[0])
    norms = weight_norms(stacked)
    dists = weight_norms(_difference(stacked, stack_params([init_list[i] for i in ok])))
    plain = pacbayes_sigmas(stacked, x, y, [seeds[i] for i in ok], settings, magnitude_aware=False)
    mag = pacbayes_sigmas(stacked, x, y, [seeds[i] for i in ok], settings, magnitude_aware=True)
    for j, i in enumerate(ok):
        values = (1 / plain[j] ** 2, 1 / mag[j] ** 2, norms[j], dists[j])
        results[i] = {key: v if math.isfinite(v) else None for key, v in zip(MEASURE_KEYS, values, strict=True)}
    return results


def initializations(cells, n_features: int) -> list[list[tuple[torch.Tensor, torch.Tensor]]]:
    """Each cell's initial params, recomputed as the trainers draw them (its seed, shape and dtype)."""
    return [init_params(c.seed, layer_sizes(n_features, c.hidden), torch_dtype(c.dtype)) for c in cells]


def stack_params(params_list) -> list[torch.Tensor]:
    """[W0, b0, W1, b1, ...] with a leading model axis: W [K, in, out], b [K, out]."""
    if not params_list:
        raise ValueError("stack_params: no models")
    shapes = [[tuple(t.shape) for wb in p for t in wb] for p in params_list]
    dtypes = {t.dtype for p in params_list for wb in p for t in wb}
    if any(s != shapes[0] for s in shapes) or len(dtypes) != 1:
        raise ValueError(f"stack_params: the models differ in shape or dtype ({shapes[0]} vs others, {dtypes})")
    return [torch.stack([p[j // 2][j % 2] for p in params_list]) for j in range(len(shapes[0]))]


def weight_norms(stacked: list[torch.Tensor]) -> list[float]:
    """Per model, the L2 norm over all of its tensors."""
    per_tensor = torch.stack([torch.linalg.vector_norm(t.flatten(1), dim=1) for t in stacked], dim=1)
    return torch.linalg.vector_norm(per_tensor, dim=1).tolist()


def pacbayes_sigmas(
    stacked: list[torch.Tensor],
    x: torch.Tensor,
    y: torch.Tensor,
    seeds: Sequence[int],
    settings: FlatnessSettings = FlatnessSettings(),
    magnitude_aware: bool = False,
) -> list[float]:
    """Per model of `stacked` (x and y in its dtype), the sigma the bisection finds."""
    s = settings
    eps = s.mag_eps if magnitude_aware else None
    bounds = s.mag_sigma_bounds if magnitude_aware else s.sigma_bounds
    shares = _Shares.of(x, y, s.samples // 2)
    draws: dict[int, list[torch.Tensor]] = {}  # per seed: with the default seed, one draw serves every model
    for seed in seeds:
        if seed not in draws:
            draws[seed] = _draws(seed, stacked[:-2], shares.parts, twice=magnitude_aware)
    sigmas = []
    for a in range(0, len(seeds), CHUNK_MODELS):
        chunk = [t[a : a + CHUNK_MODELS] for t in stacked]
        noisy = _NoisyMSE(chunk, shares, [draws[seed] for seed in seeds[a : a + CHUNK_MODELS]], eps)
        sigmas += _bisect(noisy, s.iters, s.max_increase, bounds).tolist()
    return sigmas


def _bisect(noisy: _NoisyMSE, iters: int, max_increase: float, bounds: tuple[float, float]) -> torch.Tensor:
    """Per model, the largest log-bisection sigma whose mean MSE increase is <= max_increase (NaN fails)."""
    lo = torch.full((noisy.c,), math.log(bounds[0]), dtype=torch.float64)
    hi = torch.full((noisy.c,), math.log(bounds[1]), dtype=torch.float64)
    for _ in range(iters):
        mid = (lo + hi) / 2
        passed = noisy.increase(mid.exp()) <= max_increase
        lo, hi = torch.where(passed, mid, lo), torch.where(passed, hi, mid)
    return lo.exp()


@dataclass
class _Shares:
    """The training set dealt into `parts` interleaved shares (row i to share i % parts), padded to one length m:
    x [parts, m, f], y and mask [parts, m] (mask 0 on padding); x_all, y_all the whole set."""

    x: torch.Tensor
    y: torch.Tensor
    mask: torch.Tensor
    x_all: torch.Tensor
    y_all: torch.Tensor

    @property
    def parts(self) -> int:
        return self.x.shape[0]

    @classmethod
    def of(cls, x: torch.Tensor, y: torch.Tensor, parts: int) -> _Shares:
        n = len(y)
        m = -(-n // parts)
        pad = parts * m - n
        mask = torch.cat([torch.ones(n), torch.zeros(pad)]).to(x)
        x_pad, y_pad = torch.cat([x, x.new_zeros(pad, x.shape[1])]), torch.cat([y, y.new_zeros(pad)])
        deal = lambda t: t.view(m, parts, *t.shape[1:]).transpose(0, 1).contiguous()  # noqa: E731
        return cls(deal(x_pad), deal(y_pad), deal(mask), x, y)


class _NoisyMSE:
    """The noisy training MSE of c models, minus their unperturbed MSE, as a function of sigma [c].

    Estimator: draw pairs (z, -z) are evaluated on the shares of the training set, pair p on share p, and
    sum_p sum_(i in share p) [loss_i(z_p) + loss_i(-z_p)] / (2 n) estimates E_u MSE(w + u) without bias, each
    training point used under one pair. The antithetic pair cancels the loss's odd-order terms in the noise
    (the gradient's: zero in expectation, not in a few draws). Most of the rest of the Monte Carlo error is noise
    that shifts many predictions alike (a few degrees of freedom per draw); giving each share its own draw
    averages `parts` independent such shifts for the cost of one pair on the whole set: the error falls about
    as 1 / sqrt(parts) (benchmarks/bench_measures.py).

    Each tensor t of a hidden layer is perturbed to base + sigma * scaled: plain noise has base = t and
    scaled = z; magnitude-aware noise has base = t + eps z' and scaled = |t| z. The output layer's noise is
    integrated out exactly instead: given the last hidden activations h, E (h (w + u) + b + u_b - y)^2 =
    (h w + b - y)^2 + sum_j var(u_j) h_j^2 + var(u_b). A chunk's c models x 2 parts draws share one bmm per layer.
    """

    def __init__(self, chunk: list[torch.Tensor], shares: _Shares, draws: list[list[torch.Tensor]], mag_eps):
        self.c, self.n, self.draws = chunk[0].shape[0], len(shares.y_all), 2 * shares.parts
        # Batch entry e is model e // draws, sign (e % draws) // parts, share e % parts.
        self.x = shares.x.repeat(2 * self.c, 1, 1)
        self.y, self.mask = (t.repeat(2 * self.c, 1) for t in (shares.y, shares.mask))
        w_out, b_out = (t.repeat_interleave(self.draws, 0) for t in chunk[-2:])
        self.out = [w_out, b_out]
        # The output layer's noise variance: sigma^2 * var_w + var_fixed per weight, likewise the bias.
        plain = mag_eps is None
        self.var_w = torch.ones_like(w_out[..., 0]) if plain else w_out[..., 0].square()
        self.var_b = torch.ones_like(b_out[:, 0]) if plain else b_out[:, 0].square()
        self.var_fixed = 0.0 if plain else mag_eps**2
        self.hidden = len(chunk) > 2
        if self.hidden:
            z = [torch.stack([d[j] for d in draws]).flatten(0, 1) for j in range(len(draws[0]))]  # [b, *shape]
            self._perturb_hidden(chunk[:-2], z, mag_eps)
        self.unperturbed = _mse(_forward(chunk, shares.x_all.expand(self.c, *shares.x_all.shape)), shares.y_all)

    def _perturb_hidden(self, hidden: list[torch.Tensor], z: list[torch.Tensor], mag_eps) -> None:
        per_draw = [t.repeat_interleave(self.draws, 0) for t in hidden]
        if mag_eps is None:
            self.base, self.scaled = per_draw, z
        else:
            n = len(hidden)
            self.base = [t + mag_eps * zj for t, zj in zip(per_draw, z[n:], strict=True)]
            self.scaled = [t.abs() * zj for t, zj in zip(per_draw, z[:n], strict=True)]
        # The first layer's input is the data: its product with the noise is linear in sigma, computed once.
        self.first_base = _bmm(self.x, self.base[0]).add_(self.base[1].unsqueeze(1))
        self.first_scaled = _bmm(self.x, self.scaled[0]).add_(self.scaled[1].unsqueeze(1))

    def increase(self, sigma: torch.Tensor) -> torch.Tensor:
        """[c] estimated mean MSE at per-model sigma [c], minus the unperturbed MSE (float64)."""
        sig = sigma.to(self.x).repeat_interleave(self.draws)  # [b]
        h = self._last_hidden(sig) if self.hidden else self.x
        sq_err = (_forward(self.out, h) - self.y).square_().mul_(self.mask).sum(-1)  # [b]
        h_sq = _bmm(self.mask.unsqueeze(1), h.square()).squeeze(1)  # [b, width]: sum over the share of h_j^2
        rows = self.mask.sum(-1)
        out_noise = sig.square() * (torch.sum(h_sq * self.var_w, 1) + self.var_b * rows)
        if self.var_fixed:
            out_noise += self.var_fixed * (h_sq.sum(1) + rows)
        total = (sq_err + out_noise).view(self.c, self.draws).sum(1) / (2 * self.n)
        return (total - self.unperturbed).to("cpu", torch.float64)

    def _last_hidden(self, sig: torch.Tensor) -> torch.Tensor:
        """The last hidden layer's activations [b, m, width] under the noise."""
        h = torch.addcmul(self.first_base, self.first_scaled, sig.view(-1, 1, 1)).relu_()
        for j in range(2, len(self.base), 2):
            w = torch.addcmul(self.base[j], self.scaled[j], sig.view(-1, 1, 1))
            bias = torch.addcmul(self.base[j + 1], self.scaled[j + 1], sig.view(-1, 1))
            h = _bmm(h, w).add_(bias.unsqueeze(1)).relu_()
        return h


def _draws(seed: int, hidden: list[torch.Tensor], parts: int, twice: bool) -> list[torch.Tensor]:
    """One model's standard normal draws, [2 * parts, *shape] per hidden tensor (a second set after the first
    when `twice`): draws parts..2 parts - 1 are minus draws 0..parts - 1. Drawn in float32 and cast, so float32
    and float64 models see the same draws."""
    gen = torch.Generator().manual_seed(seed)
    shapes = [t.shape[1:] for t in hidden] * (2 if twice else 1)
    halves = [torch.randn(parts, *shape, generator=gen).to(hidden[0]) for shape in shapes] if hidden else []
    return [torch.cat([h, -h]) for h in halves]


def _forward(layers: list[torch.Tensor], h: torch.Tensor) -> torch.Tensor:
    """Predictions [B, n] of B stacked MLPs (ReLU between layers): layers [W0, b0, ...] with W [B, in, out], h
    their input [B, n, in]."""
    for j in range(0, len(layers), 2):
        h = _bmm(h, layers[j]).add_(layers[j + 1].unsqueeze(1))
        if j + 2 < len(layers):
            h = h.relu_()
    return h.squeeze(-1)


def _bmm(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """torch.bmm, with a batch of one run as a batch of two: bmm takes another kernel (gemv) for one
    matrix-vector product, which rounds differently; a model's numbers then do not depend on its chunk."""
    if a.shape[0] == 1:
        return torch.bmm(a.expand(2, *a.shape[1:]), b.expand(2, *b.shape[1:]))[:1]
    return torch.bmm(a, b)


def _mse(pred: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return (pred - y).square_().mean(-1)  # per model


def _difference(a: list[torch.Tensor], b: list[torch.Tensor]) -> list[torch.Tensor]:
    if [t.shape for t in a] != [t.shape for t in b]:
        raise ValueError("block_measures: init_list's shapes differ from params_list's")
    return [s - t.to(s) for s, t in zip(a, b, strict=True)]


def _finite(params) -> bool:
    return all(bool(torch.isfinite(t).all()) for wb in params for t in wb)


def _check_data(stacked: list[torch.Tensor], x: torch.Tensor, y: torch.Tensor) -> None:
    if x.ndim != 2 or y.ndim != 1 or x.shape[0] != y.shape[0]:
        raise ValueError(f"block_measures: expected x [n, f] and y [n], got {tuple(x.shape)} and {tuple(y.shape)}")
    if x.shape[1] != stacked[0].shape[1]:
        raise ValueError(f"block_measures: x has {x.shape[1]} features, the first layer takes {stacked[0].shape[1]}")
