"""The training MSE of stacked models under Gaussian weight noise, estimated with antithetic pairs of draws over
shares of the training set (the Monte Carlo part of genboost.measures.pacbayes)."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from genboost.train.model import activation, forward, layers_of, linear, matmul


@dataclass
class Shares:
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
    def of(cls, x: torch.Tensor, y: torch.Tensor, parts: int) -> Shares:
        n = len(y)
        m = -(-n // parts)
        pad = parts * m - n
        mask = torch.cat([torch.ones(n), torch.zeros(pad)]).to(x)
        x_pad, y_pad = torch.cat([x, x.new_zeros(pad, x.shape[1])]), torch.cat([y, y.new_zeros(pad)])
        deal = lambda t: t.view(m, parts, *t.shape[1:]).transpose(0, 1).contiguous()  # noqa: E731
        return cls(deal(x_pad), deal(y_pad), deal(mask), x, y)


class NoisyMSE:
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

    def __init__(
        self, chunk: list[torch.Tensor], normed: bool, shares: Shares, draws: list[list[torch.Tensor]], mag_eps
    ):
        self.c, self.n, self.draws = chunk[0].shape[0], len(shares.y_all), 2 * shares.parts
        self.per_layer = 4 if normed else 2  # tensors of a hidden layer: W, b (, the norm's gain and bias)
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
        layers = layers_of([t if t.dim() == 3 else t.unsqueeze(1) for t in chunk], normed)
        self.unperturbed = mse(forward(layers, shares.x_all.expand(self.c, *shares.x_all.shape))[1], shares.y_all)

    def _perturb_hidden(self, hidden: list[torch.Tensor], z: list[torch.Tensor], mag_eps) -> None:
        per_draw = [t.repeat_interleave(self.draws, 0) for t in hidden]
        if mag_eps is None:
            self.base, self.scaled = per_draw, z
        else:
            n = len(hidden)
            self.base = [t + mag_eps * zj for t, zj in zip(per_draw, z[n:], strict=True)]
            self.scaled = [t.abs() * zj for t, zj in zip(per_draw, z[:n], strict=True)]
        # The first layer's input is the data: its product with the noise is linear in sigma, computed once.
        self.first_base = linear(self.x, self.base[0], self.base[1].unsqueeze(1))
        self.first_scaled = linear(self.x, self.scaled[0], self.scaled[1].unsqueeze(1))

    def increase(self, sigma: torch.Tensor) -> torch.Tensor:
        """[c] estimated mean MSE at per-model sigma [c], minus the unperturbed MSE (float64)."""
        sig = sigma.to(self.x).repeat_interleave(self.draws)  # [b]
        h = self._last_hidden(sig) if self.hidden else self.x
        w_out, b_out = self.out
        sq_err = (linear(h, w_out, b_out.unsqueeze(1)).squeeze(-1) - self.y).square_().mul_(self.mask).sum(-1)  # [b]
        h_sq = matmul(self.mask.unsqueeze(1), h.square()).squeeze(1)  # [b, width]: sum over the share of h_j^2
        rows = self.mask.sum(-1)
        out_noise = sig.square() * (torch.sum(h_sq * self.var_w, 1) + self.var_b * rows)
        if self.var_fixed:
            out_noise += self.var_fixed * (h_sq.sum(1) + rows)
        total = (sq_err + out_noise).view(self.c, self.draws).sum(1) / (2 * self.n)
        return (total - self.unperturbed).to("cpu", torch.float64)

    def _last_hidden(self, sig: torch.Tensor) -> torch.Tensor:
        """The last hidden layer's activations [b, m, width] under the noise (`model.forward`'s hidden layers)."""
        h = torch.addcmul(self.first_base, self.first_scaled, sig.view(-1, 1, 1))
        for j in range(0, len(self.base), self.per_layer):
            if j:  # the first layer's linear output is h already
                h = linear(h, self._perturbed(j, sig), self._perturbed(j + 1, sig))
            h = activation(h, *(self._perturbed(t, sig) for t in range(j + 2, j + self.per_layer)))
        return h

    def _perturbed(self, j: int, sig: torch.Tensor) -> torch.Tensor:
        """Hidden tensor j under the noise, a vector (bias, gain) as a row: base + sigma * scaled."""
        base = self.base[j]
        t = torch.addcmul(base, self.scaled[j], sig.view(-1, *[1] * (base.dim() - 1)))
        return t if base.dim() == 3 else t.unsqueeze(1)


def draws_of(seed: int, hidden: list[torch.Tensor], parts: int, twice: bool) -> list[torch.Tensor]:
    """One model's standard normal draws, [2 * parts, *shape] per hidden tensor (a second set after the first
    when `twice`): draws parts..2 parts - 1 are minus draws 0..parts - 1. Drawn in float32 and cast, so float32
    and float64 models see the same draws."""
    gen = torch.Generator().manual_seed(seed)
    shapes = [t.shape[1:] for t in hidden] * (2 if twice else 1)
    halves = [torch.randn(parts, *shape, generator=gen).to(hidden[0]) for shape in shapes] if hidden else []
    return [torch.cat([h, -h]) for h in halves]


def mse(pred: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return (pred - y).square_().mean(-1)  # per model
