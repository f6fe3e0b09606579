"""The plain, obviously-correct trainer: one cell, stock PyTorch modules and optimizers.

It is the oracle the fast stacked engine (`genboost.train.engine`) is checked against, so every choice
below is part of a contract the engine copies op for op:

- model: `MLP`, the model's one forward pass (`genboost.train.model.forward`: Linear, ReLU, ..., Linear on
  `layer_sizes`; with `norm: layer` a LayerNorm after each hidden Linear, before its ReLU) on torch parameters,
  weights from `init_params` (a norm's gain 1, bias 0, as nn.LayerNorm starts); backward by autograd;
  optimizer parameters in `model.parameters()` order: W0, b0, (gain0, beta0,) W1, ...
  (without `wd_norm_params`, the norm's gains and biases in a second group with no weight decay);
- loss: mean squared error over the batch of `model(x)` against y;
- optimizer: SGD (momentum, L2 `weight_decay`) or Adam, single-tensor path (foreach=False);
  wd_mode "decoupled" is AdamW for Adam, and for SGD `p.mul_(1 - lr_now * wd)` just before each base
  step (SGDW); with rho > 0 the optimizer is wrapped in `genboost.train.sam.SAM`;
- schedule: CosineAnnealingLR(T_max=cell.t_max) on the base optimizer, stepped after each epoch;
- batches: each epoch `torch.randperm(n_train, generator=shuffle_generator(seed))`, sliced in order,
  last smaller batch kept;
- divergence: the first non-finite batch loss stops the cell (diverged_step = completed steps + 1).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from genboost.config.cell import NORMS
from genboost.config.optimizers import ADAM, SGD
from genboost.train.model import (
    Cell,
    Split,
    final_metrics,
    flush_denormal,
    forward,
    init_norm_params,
    init_params,
    layer_sizes,
    layers_of,
    model_tensors,
    shuffle_generator,
    torch_dtype,
)
from genboost.train.sam import SAM


class MLP(nn.Module):
    """The cell's model as a torch module: its parameters W0 [in, out], b0, (gain0, bias0,) W1, ... in
    `model.param_shapes` order (biases as vectors), its forward `model.forward`."""

    def __init__(self, cell: Cell, n_features: int, device="cpu"):
        super().__init__()
        dtype, sizes = torch_dtype(cell.dtype), layer_sizes(n_features, cell.hidden)
        linears = init_params(cell.seed, sizes, dtype)
        norms = init_norm_params(sizes, dtype) if cell.normed else []
        self.normed = cell.normed
        self.weights = nn.ParameterList(nn.Parameter(t.to(device)) for t in model_tensors(linears, norms))

    def layers(self) -> list[tuple]:
        return layers_of(self.weights, self.normed)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return forward(self.layers(), x)[1]


def param_groups(cell: Cell, model: MLP) -> list[dict]:
    """The optimizer's parameter groups: one, or without `wd_norm_params` the norm's gains and biases apart with
    weight_decay 0 ("decay" False: SGDW's decay leaves them alone too)."""
    if not cell.normed or cell.wd_norm_params:
        return [{"params": list(model.parameters())}]
    layers = model.layers()
    linears = [p for w, b, _, _ in layers for p in (w, b)]
    norms = [p for _, _, gain, bias in layers if gain is not None for p in (gain, bias)]
    return [{"params": linears}, {"params": norms, "weight_decay": 0.0, "decay": False}]


@dataclass(frozen=True)
class TorchOptimizer:
    """An optimizer as torch.optim builds it for a cell: its class, its keyword arguments but lr, and whether the
    decoupled decay is a step pre-hook (`_sgdw_decay`: torch's SGD has no decoupled mode)."""

    cls: type
    kwargs: dict
    decay_hook: bool = False


def _sgd(cell: Cell, decoupled: bool) -> TorchOptimizer:
    kwargs = dict(momentum=cell.momentum, weight_decay=0.0 if decoupled else cell.wd)
    return TorchOptimizer(torch.optim.SGD, kwargs, decay_hook=decoupled and cell.wd != 0)


def _adam(cell: Cell, decoupled: bool) -> TorchOptimizer:
    cls = torch.optim.AdamW if decoupled else torch.optim.Adam
    return TorchOptimizer(cls, dict(betas=cell.adam_betas, eps=cell.adam_eps, weight_decay=cell.wd))


# Each optimizer of genboost.config.optimizers as torch.optim builds it: (cell, decoupled) -> TorchOptimizer;
# tests/test_optimizers.py checks that the two name the same optimizers.
TORCH_OPTIMIZERS = {SGD: _sgd, ADAM: _adam}


def build_optimizer(cell: Cell, params) -> tuple[torch.optim.Optimizer, torch.optim.Optimizer]:
    """(optimizer to step, base optimizer for the scheduler); the two are the same object without SAM."""
    if cell.wd_mode not in ("coupled", "decoupled"):
        raise ValueError(f"cell.wd_mode must be 'coupled' or 'decoupled', got {cell.wd_mode!r}")
    decoupled = cell.wd_mode == "decoupled"
    if cell.norm not in NORMS:
        raise ValueError(f"cell.norm must be one of {list(NORMS)}, got {cell.norm!r}")
    if cell.optimizer not in TORCH_OPTIMIZERS:
        raise ValueError(f"cell.optimizer must be one of {list(TORCH_OPTIMIZERS)}, got {cell.optimizer!r}")
    torch_optimizer = TORCH_OPTIMIZERS[cell.optimizer](cell, decoupled)
    cls, kwargs = torch_optimizer.cls, dict(torch_optimizer.kwargs, lr=cell.lr, foreach=False)
    if cell.rho > 0:
        opt = SAM(params, cls, rho=cell.rho, adaptive=cell.sam_adaptive, **kwargs)
        base = opt.base_optimizer
    else:
        opt = base = cls(params, **kwargs)
    if torch_optimizer.decay_hook:
        base.register_step_pre_hook(_sgdw_decay(cell.wd))
    return opt, base


def _sgdw_decay(wd: float):
    """Step pre-hook: decoupled decay p *= 1 - lr_now * wd at the weights the base step starts from."""

    def hook(optimizer, args, kwargs):
        with torch.no_grad():
            for group in optimizer.param_groups:
                for p in group["params"] if group.get("decay", True) else []:
                    p.mul_(1 - group["lr"] * wd)

    return hook


def train_cell(
    cell: Cell, split: Split, device="cpu", max_steps: int | None = None, return_params: bool = False
) -> dict:
    """Train one cell and report its train/test MSE and accuracy (see the module docstring for the contract)."""
    if max_steps is not None and max_steps < 0:
        raise ValueError(f"max_steps must be >= 0 or None, got {max_steps!r}")
    data = split.to(device=device, dtype=torch_dtype(cell.dtype))
    with flush_denormal(cell.flush_denormal):
        model = MLP(cell, data.x_train.shape[1], device)
        opt, base = build_optimizer(cell, param_groups(cell, model))
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(base, T_max=cell.t_max)
        steps, diverged_step = _fit(cell, model, opt, sched, data, max_steps)
        with torch.no_grad():
            train_pred, test_pred = model(data.x_train), model(data.x_test)
        result = final_metrics(train_pred, test_pred, data, steps, diverged_step)
    if return_params:
        layers = [[None if t is None else t.detach().clone().cpu() for t in layer] for layer in model.layers()]
        result["params"] = [(w, b) for w, b, _, _ in layers]
        if cell.normed:
            result["norm_params"] = [(gain, bias) for _, _, gain, bias in layers if gain is not None]
    return result


def _fit(cell: Cell, model, opt, sched, data: Split, max_steps: int | None) -> tuple[int, int | None]:
    """Run the epochs; return (optimizer steps done, 1-based step of divergence or None)."""
    n = data.x_train.shape[0]
    limit = math.inf if max_steps is None else max_steps
    gen = shuffle_generator(cell.seed)
    steps = 0
    for _ in range(cell.epochs):
        perm = torch.randperm(n, generator=gen).to(data.x_train.device)
        for start in range(0, n, cell.batch_size):
            if steps >= limit:
                return steps, None
            idx = perm[start : start + cell.batch_size]
            closure = _forward_backward(model, data.x_train[idx], data.y_train[idx])
            opt.zero_grad()
            loss = closure()
            if not torch.isfinite(loss).item():
                return steps, steps + 1
            if isinstance(opt, SAM):
                opt.step(closure)
            else:
                opt.step()
            steps += 1
        sched.step()
    return steps, None


def _forward_backward(model, xb: torch.Tensor, yb: torch.Tensor):
    """The batch's closure: mean squared error of model(xb) against yb, backpropagated; returns the loss."""

    def closure():
        loss = nn.functional.mse_loss(model(xb), yb)
        loss.backward()
        return loss

    return closure
