"""The stacked engine: trains a block of K cells at once, number for number like `genboost.reference`.

The K cells' weights live stacked ([K, in, out], [K, 1, out]) in one flat buffer per kind of state
(weights, gradients, moments), layer after layer, so a layer's stack is a contiguous view that
bmm/baddbmm read and write directly and cell-independent optimizer ops run once on the whole buffer.
Forward and backward are written by hand (autograd over the stacked graph is 2-4x slower); the
optimizer updates follow torch's SGD / Adam / SAM, with each cell's own lr, wd and rho as [K, 1, 1]
tensors (Adam through torch's fused kernel, rounding like `Adam(fused=True)`). Every op acts on each
cell's slice alone, in the same way whatever K is, so a cell's numbers do not depend on its
block-mates (CPU: bit-identical, see `tests/test_engine.py`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from itertools import pairwise

import torch

from genboost.model import (
    Cell,
    Split,
    final_metrics,
    flush_denormal,
    init_params,
    layer_sizes,
    lr_schedule,
    prediction_metrics,
    shuffle_generator,
    steps_per_epoch,
    torch_dtype,
)

# Cells per block, measured with benchmarks/bench_engine.py on the 2-core CPU (1 thread, real data, 64-64 MLP):
# per-model time is flat from K = 48 to 96 and rises again at 192 (the optimizer state outgrows the caches).
BLOCK_SIZE = 96

# The settings a block's cells must share: they fix the loop, the optimizer's code path and the shapes.
_SHARED = ("optimizer", "sam", "epochs", "batch_size", "t_max", "momentum", "adam_betas", "adam_eps", "wd_mode")
_SHARED += ("sam_adaptive", "hidden", "dtype", "flush_denormal")


def block_key(cell: Cell) -> tuple:
    return tuple(getattr(cell, name) for name in _SHARED)


def plan_blocks(cells: Sequence[Cell], block_size: int) -> list[list[int]]:
    """Indices of `cells` grouped by `block_key`, each group cut into near-equal chunks of <= block_size."""
    groups: dict[tuple, list[int]] = {}
    for i, cell in enumerate(cells):
        groups.setdefault(block_key(cell), []).append(i)
    blocks = []
    for idx in groups.values():
        n_chunks = math.ceil(len(idx) / block_size)
        bounds = [round(j * len(idx) / n_chunks) for j in range(n_chunks + 1)]
        blocks += [idx[a:b] for a, b in pairwise(bounds)]
    return blocks


def train_cells(
    cells: Sequence[Cell],
    split: Split,
    device="cpu",
    max_steps: int | None = None,
    return_params: bool = False,
    curve_every: int | None = None,
    progress: Callable | None = None,
    block_size: int = BLOCK_SIZE,
) -> list[dict]:
    """Train every cell; results in the order of `cells`, with the keys of `reference.train_cell` (+ "curve")."""
    for name, value, low in (("max_steps", max_steps, 0), ("curve_every", curve_every, 1)):
        if value is not None and (not isinstance(value, int) or value < low):
            raise ValueError(f"{name} must be an int >= {low} or None, got {value!r}")
    if not isinstance(block_size, int) or block_size < 1:
        raise ValueError(f"block_size must be an int >= 1, got {block_size!r}")
    for i, cell in enumerate(cells):
        _check_cell(i, cell)
    results: list[dict | None] = [None] * len(cells)
    done = 0
    for idx in plan_blocks(cells, block_size):
        block = [cells[i] for i in idx]
        # A lone cell trains beside a copy of itself: bmm takes another kernel (gemv) for a batch of one
        # matrix-vector product, which would round the last layer differently than inside a block.
        padded = block * 2 if len(block) == 1 else block
        report = None if progress is None else (lambda e, n=done, ep=block[0].epochs: progress(n, len(cells), e, ep))
        with flush_denormal(block[0].flush_denormal):
            data = split.to(device=device, dtype=torch_dtype(block[0].dtype))
            out = _fit_block(padded, data, max_steps, return_params, curve_every, report)
        for i, result in zip(idx, out, strict=False):  # drops a lone cell's copy
            results[i] = result
        done += len(idx)
    return results


def _check_cell(i: int, cell: Cell) -> None:
    allowed = {"optimizer": ("sgd", "adam"), "wd_mode": ("coupled", "decoupled"), "dtype": ("float32", "float64")}
    for field, values in allowed.items():
        if getattr(cell, field) not in values:
            raise ValueError(f"cells[{i}].{field} must be one of {values}, got {getattr(cell, field)!r}")
    for field in ("epochs", "batch_size", "t_max"):
        if getattr(cell, field) < 1:
            raise ValueError(f"cells[{i}].{field} must be >= 1, got {getattr(cell, field)!r}")


# Flat buffers are padded with zeros to a multiple of this many elements (a multiple of every SIMD width):
# a vectorized kernel then runs its vector body on every element and never its scalar tail, whose
# rounding can differ (fused Adam's does), so an element's numbers do not depend on where K puts it.
_ALIGN = 64


class _Stack:
    """One flat buffer of a state (weights, grads, ...) of K cells, seen per layer as [K, in, out] and [K, 1, out]."""

    def __init__(self, k: int, sizes: list[int], dtype, device):
        self.k, self.sizes = k, sizes
        self.shapes = [s for i, o in pairwise(sizes) for s in ((k, i, o), (k, 1, o))]
        self.numels = [math.prod(s) for s in self.shapes]
        self.flat = torch.zeros(-(-sum(self.numels) // _ALIGN) * _ALIGN, dtype=dtype, device=device)
        self.views = self.split(self.flat)

    def split(self, flat: torch.Tensor) -> list[torch.Tensor]:
        parts = flat[: sum(self.numels)].split(self.numels)
        return [p.view(s) for p, s in zip(parts, self.shapes, strict=True)]

    def load_init(self, seeds: list[int]) -> None:
        """Cell i's weights from `init_params(seeds[i], ...)`, as the reference starts."""
        for i, seed in enumerate(seeds):
            init = [t for wb in init_params(seed, self.sizes, self.flat.dtype) for t in wb]
            for view, value in zip(self.views, init, strict=True):
                view[i].copy_(value.view(view.shape[1:]))

    def like(self) -> tuple[torch.Tensor, list[torch.Tensor]]:
        flat = torch.zeros_like(self.flat)
        return flat, self.split(flat)


def _forward(params: list[torch.Tensor], h: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
    """(inputs of each layer, predictions [K, B]); h is [K, B, features]."""
    acts = [h]
    n_layers = len(params) // 2
    for layer in range(n_layers):
        h = torch.bmm(h, params[2 * layer]).add_(params[2 * layer + 1])  # = baddbmm, without its slow bias copy
        if layer < n_layers - 1:
            acts.append(h.relu_())
    return acts, h.squeeze(-1)


def _loss_and_grad(params, grads, xb: torch.Tensor, yb: torch.Tensor) -> torch.Tensor:
    """Per-cell batch MSE [K]; writes its gradient into `grads` (autograd's mse_loss/addmm/relu backward)."""
    acts, pred = _forward(params, xb)
    diff = pred - yb
    loss = diff.square().mean(1)
    dz = diff.mul_(2.0 / yb.shape[1]).unsqueeze(-1)
    for layer in reversed(range(len(params) // 2)):
        torch.bmm(acts[layer].transpose(1, 2), dz, out=grads[2 * layer])
        torch.sum(dz, 1, keepdim=True, out=grads[2 * layer + 1])
        if layer:
            da = torch.bmm(dz, params[2 * layer].transpose(1, 2))
            dz = torch.ops.aten.threshold_backward.grad_input(da, acts[layer], 0, grad_input=da)  # in place: 2x faster
    return loss


class _Optimizer:
    """torch's SGD / Adam(W) (+ SGDW decay, + SAM ascent) on a stack, per-cell lr/wd/rho.

    Plain SGD and the decays copy the single-tensor ops; the momentum buffer is one fused multiply-add and
    Adam is torch's fused CPU/CUDA kernel, both rounding like torch's own fused optimizers (see the tests).
    """

    def __init__(self, cells: Sequence[Cell], stack: _Stack, grads: list[torch.Tensor], grad_flat: torch.Tensor):
        c, dev = cells[0], stack.flat.device
        self.cell, self.stack, self.grads, self.grad_flat = c, stack, grads, grad_flat
        self.dtype = stack.flat.dtype
        col = dict(dtype=torch.float64, device=dev)
        self.lrs = torch.tensor([lr_schedule(x.lr, x.epochs, x.t_max) for x in cells], **col).T.contiguous()
        self.wd64 = torch.tensor([x.wd for x in cells], **col)
        self.wd = self._per_cell(self.wd64)
        self.rho = self._per_cell(torch.tensor([x.rho for x in cells], **col))
        self.any_wd = any(x.wd != 0 for x in cells)
        self.decoupled = c.wd_mode == "decoupled"
        self.buf_flat, self.buf = stack.like()  # momentum buffer / Adam exp_avg
        if c.optimizer == "adam":
            self.sq_flat, _ = stack.like()
            self.dir_flat, self.dir = stack.like()  # Adam's step direction exp_avg_hat / denom
            self.step_t = torch.zeros((), dtype=torch.float32, device=dev)  # the fused kernel's step count
        self.steps = 0

    def _per_cell(self, values: torch.Tensor) -> torch.Tensor:
        return values.to(self.dtype).view(-1, 1, 1)

    def _each(self, t: torch.Tensor) -> list[torch.Tensor]:
        return [t] * len(self.stack.views)

    def set_epoch(self, epoch: int) -> None:
        self.lr64 = self.lrs[epoch]
        self.neg_lr = self._per_cell(-self.lr64)
        self.decay = self._per_cell(1 - self.lr64 * self.wd64)  # SGDW / AdamW: p *= 1 - lr * wd, in double

    def sam_ascent(self, into: _Stack) -> None:
        """SAM's first step: w + e(w) into `into`, e = rho * g / (||g|| + 1e-12) per cell (ASAM: w^2 g).

        Writing the perturbed weights to a second stack leaves w in place: no copy out and back."""
        params, grads, adaptive = self.stack.views, self.grads, self.cell.sam_adaptive
        scaled = [p.abs() * g for p, g in zip(params, grads, strict=True)] if adaptive else grads
        norms = torch.stack([torch.linalg.vector_norm(s, dim=(1, 2)) for s in scaled], dim=1)
        scale = ((torch.linalg.vector_norm(norms, dim=1) + 1e-12).reciprocal() * self.rho.view(-1)).view(-1, 1, 1)
        if adaptive:
            e = torch._foreach_mul(params, params)
            torch._foreach_mul_(e, grads)
        else:
            e = grads
        for p, g, out in zip(params, e, into.views, strict=True):
            torch.addcmul(p, g, scale, out=out)  # = p + g * scale, rounded like the reference's two ops

    def step(self) -> None:
        params, grads, c = self.stack.views, self.grads, self.cell
        if self.any_wd and self.decoupled:
            torch._foreach_mul_(params, self._each(self.decay))
        elif self.any_wd:
            torch._foreach_addcmul_(grads, params, self._each(self.wd))  # grad + wd * p
        g = self.grad_flat
        if c.optimizer == "sgd":
            if c.momentum and self.steps == 0:
                self.buf_flat.copy_(g)  # torch starts the buffer as a copy of the first gradient
            elif c.momentum:
                torch.add(g, self.buf_flat, alpha=c.momentum, out=self.buf_flat)  # buf * momentum + g, one pass
            torch._foreach_addcmul_(params, self.buf if c.momentum else grads, self._each(self.neg_lr))
        else:
            # The fused kernel takes one lr: it runs with lr = -1 on a zeroed buffer, which leaves Adam's
            # direction exp_avg / (1 - beta1^t) / denom there, and each cell then steps by its own lr.
            self.step_t += 1
            self.dir_flat.zero_()
            beta1, beta2 = c.adam_betas
            torch._fused_adam_(
                [self.dir_flat], [g], [self.buf_flat], [self.sq_flat], [], [self.step_t],
                lr=-1.0, beta1=beta1, beta2=beta2, weight_decay=0.0, eps=c.adam_eps, amsgrad=False, maximize=False,
            )  # fmt: skip
            torch._foreach_addcmul_(params, self.dir, self._each(self.neg_lr))
        self.steps += 1


def _fit_block(cells, data: Split, max_steps, return_params, curve_every, report) -> list[dict]:
    c, k = cells[0], len(cells)
    n, n_features = data.x_train.shape
    stack = _Stack(k, layer_sizes(n_features, c.hidden), data.x_train.dtype, data.x_train.device)
    stack.load_init([cell.seed for cell in cells])
    grad_flat, grads = stack.like()
    opt = _Optimizer(cells, stack, grads, grad_flat)
    perturbed = _Stack(k, stack.sizes, stack.flat.dtype, stack.flat.device) if c.sam else None
    dead = _Dead(stack)
    gens = [shuffle_generator(cell.seed) for cell in cells]
    limit = math.inf if max_steps is None else max_steps
    curves: list[list[dict]] = [[] for _ in cells]
    spe = steps_per_epoch(n, c.batch_size)
    for epoch in range(c.epochs):
        if opt.steps >= limit or dead.all_dead():
            break
        # Generators stay on the CPU (as in the reference); only the index tensor moves.
        perm = torch.stack([torch.randperm(n, generator=g) for g in gens]).to(data.x_train.device)
        opt.set_epoch(epoch)
        for start in range(0, n, c.batch_size):
            if opt.steps >= limit:
                break
            idx = perm[:, start : start + c.batch_size].reshape(-1)
            xb = data.x_train.index_select(0, idx).view(k, -1, n_features)  # 4x faster than x_train[idx]
            yb = data.y_train.index_select(0, idx).view(k, -1)
            loss = _loss_and_grad(stack.views, grads, xb, yb)
            if not math.isfinite(loss.sum().item()):  # one cheap test; an overflowing sum only costs a look
                dead.add(~torch.isfinite(loss), opt.steps + 1)
            if c.sam:
                opt.sam_ascent(perturbed)
                _loss_and_grad(perturbed.views, grads, xb, yb)
            opt.step()
            dead.restore()
        if curve_every and (epoch + 1) % curve_every == 0 and opt.steps == (epoch + 1) * spe:
            _add_curve_point(curves, stack, data, epoch + 1)
        if report is not None:
            report(epoch + 1)
    if curve_every and (not curves[0] or curves[0][-1]["epoch"] * spe != opt.steps):
        epochs_done = opt.steps / spe
        _add_curve_point(curves, stack, data, int(epochs_done) if epochs_done.is_integer() else epochs_done)
    return _results(cells, stack, data, opt.steps, dead, return_params, curves if curve_every else None)


class _Dead:
    """Cells whose batch loss went non-finite: they keep the weights they had then (the others go on)."""

    def __init__(self, stack: _Stack):
        self.stack, self.k = stack, stack.k
        self.step: dict[int, int] = {}
        self.idx = None
        self.frozen: list[torch.Tensor] = []

    def add(self, bad: torch.Tensor, step: int) -> None:
        new = [i for i in bad.nonzero().view(-1).tolist() if i not in self.step]
        if not new:
            return
        self.step.update({i: step for i in new})
        self.idx = torch.tensor(sorted(self.step), device=self.stack.flat.device)
        # Rows of cells that died earlier already hold their frozen weights (restored after each step).
        self.frozen = [v.index_select(0, self.idx) for v in self.stack.views]

    def restore(self) -> None:
        if self.idx is not None:
            for view, frozen in zip(self.stack.views, self.frozen, strict=True):
                view.index_copy_(0, self.idx, frozen)

    def all_dead(self) -> bool:
        return len(self.step) == self.k


def _predict(stack: _Stack, x: torch.Tensor) -> torch.Tensor:
    """Predictions [K, n] of every cell on the whole of x [n, f]."""
    return _forward(stack.views, x.expand(stack.k, -1, -1))[1]


def _add_curve_point(curves, stack: _Stack, data: Split, epoch) -> None:
    with torch.no_grad():
        train, test = _predict(stack, data.x_train), _predict(stack, data.x_test)
    for i, curve in enumerate(curves):
        mse = [prediction_metrics(train[i], data.y_train)[0], prediction_metrics(test[i], data.y_test)[0]]
        curve.append({"epoch": epoch, "train_mse": mse[0], "test_mse": mse[1]})


def _results(cells, stack: _Stack, data: Split, steps: int, dead: _Dead, return_params: bool, curves) -> list[dict]:
    train, test = _predict(stack, data.x_train), _predict(stack, data.x_test)
    results = []
    for i in range(len(cells)):
        died = dead.step.get(i)
        result = final_metrics(train[i], test[i], data, steps if died is None else died - 1, died)
        if return_params:
            views = stack.views
            result["params"] = [
                (views[j][i].cpu().clone(), views[j + 1][i, 0].cpu().clone()) for j in range(0, len(views), 2)
            ]
        if curves is not None:
            result["curve"] = curves[i]
        results.append(result)
    return results
