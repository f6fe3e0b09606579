"""Generalization measures of trained models on the training set (Jiang et al., ICLR 2020, arXiv 1912.02178).

Per model of a block, all K at once (each layer's weights stacked [K, in, out], evaluated with torch.bmm):

- `pacbayes_flatness`: 1 / sigma^2 for the largest sigma whose Monte Carlo mean training MSE of w + u,
  u ~ N(0, sigma^2 I) over every weight and bias (a norm's gains and biases too), exceeds the unperturbed MSE by
  at most `max_increase`;
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
out): `genboost.measures.noisy_mse`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from genboost.measures.noisy_mse import NoisyMSE, Shares, draws_of
from genboost.train.model import init_norm_params, init_params, layer_sizes, model_tensors, torch_dtype

MEASURE_KEYS = ("pacbayes_flatness", "pacbayes_mag_flatness", "weight_norm", "dist_from_init")
NOISE_SEED = 0x9AC_BA7E5
CHUNK_MODELS = 2  # models evaluated together: their activations (2 n x width each) stay in the cache


@dataclass(frozen=True)
class FlatnessSettings:
    """How the PAC-Bayes sigmas are searched (defaults: benchmarks/bench_measures.py).

    max_increase is in MSE units (the obesity labels are ordinal 0..6; its models reach a training MSE of ~0.05-0.5).
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
    norm_list: Sequence[list[tuple[torch.Tensor, torch.Tensor]]] | None = None,
    norm_init_list: Sequence[list[tuple[torch.Tensor, torch.Tensor]]] | None = None,
) -> list[dict[str, float | None]]:
    """One dict of MEASURE_KEYS per model of the block (plain floats).

    params_list[i] / init_list[i]: model i's trained and initial (W [in, out], b [out]) per layer, all of one
    shape and dtype; for models with a norm, norm_list[i] / norm_init_list[i] their trained and initial (gain, bias)
    per hidden layer, perturbed and counted like every weight. A model flagged in `diverged`, or with a non-finite
    parameter, gets None everywhere (as does any measure that comes out non-finite). seeds[i] seeds model i's noise
    (default NOISE_SEED for all).
    """
    k = len(params_list)
    diverged = list(diverged) if diverged is not None else [False] * k
    seeds = list(seeds) if seeds is not None else [NOISE_SEED] * k
    normed = norm_list is not None
    norm_list, norm_init_list = (list(n) if n is not None else [()] * k for n in (norm_list, norm_init_list))
    given = (("init_list", init_list), ("diverged", diverged), ("seeds", seeds), ("norm_list", norm_list))
    for name, values in (*given, ("norm_init_list", norm_init_list)):
        if len(values) != k:
            raise ValueError(f"block_measures: {name} has {len(values)} entries for {k} models")
    results: list[dict[str, float | None]] = [dict.fromkeys(MEASURE_KEYS) for _ in range(k)]
    models = [model_tensors(p, n) for p, n in zip(params_list, norm_list, strict=True)]
    ok = [i for i in range(k) if not diverged[i] and _finite(models[i])]
    if not ok:
        return results
    stacked = stack_params([models[i] for i in ok])
    _check_data(stacked, x, y)
    x, y = x.to(stacked[0]), y.to(stacked[0])
    norms = weight_norms(stacked)
    inits = stack_params([model_tensors(init_list[i], norm_init_list[i]) for i in ok])
    dists = weight_norms(_difference(stacked, inits))
    ok_seeds = [seeds[i] for i in ok]
    plain = pacbayes_sigmas(stacked, normed, x, y, ok_seeds, settings, magnitude_aware=False)
    mag = pacbayes_sigmas(stacked, normed, x, y, ok_seeds, settings, magnitude_aware=True)
    for j, i in enumerate(ok):
        values = (1 / plain[j] ** 2, 1 / mag[j] ** 2, norms[j], dists[j])
        results[i] = {key: v if math.isfinite(v) else None for key, v in zip(MEASURE_KEYS, values, strict=True)}
    return results


def initializations(cells, n_features: int) -> list[list[tuple[torch.Tensor, torch.Tensor]]]:
    """Each cell's initial params, recomputed as the trainers draw them (its seed, shape and dtype)."""
    return [init_params(c.seed, layer_sizes(n_features, c.hidden), torch_dtype(c.dtype)) for c in cells]


def norm_initializations(cells, n_features: int) -> list[list[tuple[torch.Tensor, torch.Tensor]]]:
    """Each cell's initial norm params as the trainers start them ([] for a cell without a norm)."""
    return [
        init_norm_params(layer_sizes(n_features, c.hidden), torch_dtype(c.dtype)) if c.normed else [] for c in cells
    ]


def stack_params(models) -> list[torch.Tensor]:
    """The models' tensors (each model's in `model.param_shapes` order: W0, b0, [gain0, bias0,] W1, ...) with a
    leading model axis: W [K, in, out], a vector [K, out]."""
    if not models:
        raise ValueError("stack_params: no models")
    shapes = [[tuple(t.shape) for t in m] for m in models]
    dtypes = {t.dtype for m in models for t in m}
    if any(s != shapes[0] for s in shapes) or len(dtypes) != 1:
        raise ValueError(f"stack_params: the models differ in shape or dtype ({shapes[0]} vs others, {dtypes})")
    return [torch.stack(tensors) for tensors in zip(*models, strict=True)]


def weight_norms(stacked: list[torch.Tensor]) -> list[float]:
    """Per model, the L2 norm over all of its tensors."""
    per_tensor = torch.stack([torch.linalg.vector_norm(t.flatten(1), dim=1) for t in stacked], dim=1)
    return torch.linalg.vector_norm(per_tensor, dim=1).tolist()


def pacbayes_sigmas(
    stacked: list[torch.Tensor],
    normed: bool,
    x: torch.Tensor,
    y: torch.Tensor,
    seeds: Sequence[int],
    settings: FlatnessSettings = FlatnessSettings(),
    magnitude_aware: bool = False,
) -> list[float]:
    """Per model of `stacked` (x and y in its dtype; `normed`: its hidden layers have a norm), the sigma the
    bisection finds."""
    s = settings
    eps = s.mag_eps if magnitude_aware else None
    bounds = s.mag_sigma_bounds if magnitude_aware else s.sigma_bounds
    shares = Shares.of(x, y, s.samples // 2)
    draws: dict[int, list[torch.Tensor]] = {}  # per seed: with the default seed, one draw serves every model
    for seed in seeds:
        if seed not in draws:
            draws[seed] = draws_of(seed, stacked[:-2], shares.parts, twice=magnitude_aware)
    sigmas = []
    for a in range(0, len(seeds), CHUNK_MODELS):
        chunk = [t[a : a + CHUNK_MODELS] for t in stacked]
        noisy = NoisyMSE(chunk, normed, shares, [draws[seed] for seed in seeds[a : a + CHUNK_MODELS]], eps)
        sigmas += _bisect(noisy, s.iters, s.max_increase, bounds).tolist()
    return sigmas


def _bisect(noisy: NoisyMSE, iters: int, max_increase: float, bounds: tuple[float, float]) -> torch.Tensor:
    """Per model, the largest log-bisection sigma whose mean MSE increase is <= max_increase (NaN fails)."""
    lo = torch.full((noisy.c,), math.log(bounds[0]), dtype=torch.float64)
    hi = torch.full((noisy.c,), math.log(bounds[1]), dtype=torch.float64)
    for _ in range(iters):
        mid = (lo + hi) / 2
        passed = noisy.increase(mid.exp()) <= max_increase
        lo, hi = torch.where(passed, mid, lo), torch.where(passed, hi, mid)
    return lo.exp()


def _difference(a: list[torch.Tensor], b: list[torch.Tensor]) -> list[torch.Tensor]:
    if [t.shape for t in a] != [t.shape for t in b]:
        raise ValueError("block_measures: init_list's shapes differ from params_list's")
    return [s - t.to(s) for s, t in zip(a, b, strict=True)]


def _finite(tensors) -> bool:
    return all(bool(torch.isfinite(t).all()) for t in tensors)


def _check_data(stacked: list[torch.Tensor], x: torch.Tensor, y: torch.Tensor) -> None:
    if x.ndim != 2 or y.ndim != 1 or x.shape[0] != y.shape[0]:
        raise ValueError(f"block_measures: expected x [n, f] and y [n], got {tuple(x.shape)} and {tuple(y.shape)}")
    if x.shape[1] != stacked[0].shape[1]:
        raise ValueError(f"block_measures: x has {x.shape[1]} features, the first layer takes {stacked[0].shape[1]}")
