"""The stacked engine: trains a block of K cells at once, number for number like `genboost.train.oracle`.

The K cells' weights live stacked, a layer as [K, in, out] and [K, 1, out], in one flat buffer per kind
of state (weights, gradients, moments), so that bmm reads and writes a layer's stack directly. Forward
and backward are written by hand (autograd over the stacked graph is 2-4x slower). The update is
torch's own fused SGD / Adam / AdamW kernel, as `torch.optim`'s `fused=True` computes it, one call per
group of cells that share lr and wd, after SAM's ascent with each cell's rho. Every op acts on each
cell's slice alone, in the same way whatever K is, so a cell's numbers do not depend on its
block-mates (CPU: bit-identical, see `tests/test_engine.py`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from itertools import groupby, pairwise

import torch

from genboost.train import blocks, checkpoint
from genboost.train.model import (
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


def train_cells(cells: Sequence[Cell], split: Split, progress: Callable | None = None, **options) -> list[dict]:
    """Train every cell; results in the order of `cells`, with the keys of `reference.train_cell` (+ "curve").

    `options` are `train_blocks`'s. `progress(cells_done, cells_total, epoch, epochs)` is called after each
    epoch of each block.
    """
    results: list[dict | None] = [None] * len(cells)
    done = 0
    report = None if progress is None else lambda _k, epoch, epochs: progress(done, len(cells), epoch, epochs)
    for idx, out in train_blocks(cells, split, progress=report, **options):
        for i, result in zip(idx, out, strict=True):
            results[i] = result
        done += len(idx)
    return results


def train_blocks(
    cells: Sequence[Cell],
    split: Split,
    device="cpu",
    max_steps: int | None = None,
    return_params: bool = False,
    curve_every: int | None = None,
    progress: Callable | None = None,
    block_size: int | None = None,
    start_states: Sequence[dict | None] | None = None,
    return_state: bool = False,
) -> Iterator[tuple[list[int], list[dict]]]:
    """Train the cells block by block (`plan_blocks`); yield each block as it finishes, as (positions of its
    cells in `cells`, their results in that order), so that a caller can keep what is done before the rest.

    `block_size` defaults to blocks.BLOCK_SIZE. `progress(block_cells, epoch, epochs)` is called after each epoch.
    `start_states[i]`, where given, is the "state" that `return_state` returned for the same cell trained
    for fewer epochs: cell i goes on from there, to the same bits as when trained from the start.
    """
    block_size = blocks.BLOCK_SIZE if block_size is None else block_size
    states = list(start_states) if start_states is not None else [None] * len(cells)
    blocks.check_arguments(cells, max_steps, curve_every, block_size, states)
    for idx in blocks.plan_blocks(cells, block_size, [s["epoch"] if s else 0 for s in states]):
        idx = sorted(idx, key=lambda i: (cells[i].lr, cells[i].wd))  # the optimizer steps each (lr, wd) run at once
        block = [cells[i] for i in idx]
        block_states = [states[i] for i in idx]
        # A lone cell trains beside a copy of itself: bmm takes another kernel (gemv) for a batch of one
        # matrix-vector product, which would round the last layer differently than inside a block.
        padded, block_states = (block * 2, block_states * 2) if len(block) == 1 else (block, block_states)
        k, epochs = len(block), block[0].epochs
        report = None if progress is None else (lambda e, k=k, epochs=epochs: progress(k, e, epochs))
        with flush_denormal(block[0].flush_denormal):
            data = split.to(device=device, dtype=torch_dtype(block[0].dtype))
            out = _fit_block(padded, data, max_steps, return_params, curve_every, report, block_states, return_state)
        yield idx, out[: len(idx)]  # drops a lone cell's copy


# Each cell's part of a layer is padded with zeros to a multiple of this many elements (a multiple of every
# SIMD width): the fused kernels then run their vector body on every element and never a scalar tail, whose
# rounding can differ, so an element's numbers do not depend on where K or its group puts it.
_ALIGN = 64


class _Stack:
    """One flat buffer of a state (weights, grads, moments) of K cells.

    Each weight and each bias is a block [K, width] of the buffer (a cell's numbers, padded to _ALIGN),
    seen as `views[j]` [K, in, out] or [K, 1, out]. `rows(a, b)` are cells a..b-1's parts of every
    block: contiguous and _ALIGN-sized, what one fused optimizer call steps.
    """

    def __init__(self, k: int, sizes: list[int], dtype, device):
        self.k, self.sizes = k, sizes
        shapes = [s for i, o in pairwise(sizes) for s in ((i, o), (1, o))]
        widths = [-(-(i * o) // _ALIGN) * _ALIGN for i, o in shapes]
        self.flat = torch.zeros(k * sum(widths), dtype=dtype, device=device)
        self.blocks = [b.view(k, w) for b, w in zip(self.flat.split([k * w for w in widths]), widths, strict=True)]
        self.views = [b[:, : i * o].view(k, i, o) for b, (i, o) in zip(self.blocks, shapes, strict=True)]

    def like(self) -> _Stack:
        return _Stack(self.k, self.sizes, self.flat.dtype, self.flat.device)

    def rows(self, a: int, b: int) -> list[torch.Tensor]:
        return [block[a:b] for block in self.blocks]

    def load_init(self, seeds: list[int]) -> None:
        """Cell i's weights from `init_params(seeds[i], ...)`, as the reference starts."""
        for i, seed in enumerate(seeds):
            init = [t for wb in init_params(seed, self.sizes, self.flat.dtype) for t in wb]
            for view, value in zip(self.views, init, strict=True):
                view[i].copy_(value.view(view.shape[1:]))

    def cell_params(self, i: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Cell i's (W [in, out], b [out]) per layer, as the reference holds them."""
        v = self.views
        return [(v[j][i].cpu().clone(), v[j + 1][i, 0].cpu().clone()) for j in range(0, len(v), 2)]


_PREDICT_CELLS = 4


def _bmm_into(out: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> None:
    if out.is_contiguous():
        torch.bmm(a, b, out=out)
    else:  # a padded layer: bmm into a strided `out` takes another kernel, which rounds differently
        out.copy_(torch.bmm(a, b))


class _Net:
    """The stacked MLP's forward and hand-written backward (autograd's addmm / relu / mse_loss backward)."""

    def __init__(self, stack: _Stack):
        self.stack = stack

    def forward(self, params, h: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
        """(inputs of each layer, predictions [K, B]); h is [K, B, features]."""
        acts = [h]
        n_layers = len(params) // 2
        for layer in range(n_layers):
            h = torch.bmm(h, params[2 * layer]).add_(params[2 * layer + 1])  # = baddbmm, without its slow bias copy
            if layer < n_layers - 1:
                acts.append(h.relu_())
        return acts, h.squeeze(-1)

    def loss_and_grad(self, params, grads, xb: torch.Tensor, yb: torch.Tensor) -> torch.Tensor:
        """Per-cell batch MSE [K]; writes its gradient into `grads`."""
        acts, pred = self.forward(params, xb)
        diff = pred - yb
        loss = diff.square().mean(1)
        dz = diff.mul_(2.0 / yb.shape[1]).unsqueeze(-1)
        for layer in reversed(range(len(params) // 2)):
            w, grad_w = params[2 * layer], grads[2 * layer]
            # A one-column layer (the output): elementwise products are cheaper than bmm's matrix-vector path.
            column = w.shape[-1] == 1
            if column:
                torch.sum(acts[layer] * dz, 1, keepdim=True, out=grad_w.transpose(1, 2))
            else:
                _bmm_into(grad_w, acts[layer].transpose(1, 2), dz)
            torch.sum(dz, 1, keepdim=True, out=grads[2 * layer + 1])
            if layer:
                da = dz * w.transpose(1, 2) if column else torch.bmm(dz, w.transpose(1, 2))
                # in place (grad_input=da): 2x faster than a new tensor
                dz = torch.ops.aten.threshold_backward.grad_input(da, acts[layer], 0, grad_input=da)
        return loss

    def predict(self, x: torch.Tensor) -> torch.Tensor:
        """Predictions [K, n] of every cell on the whole of x [n, f].

        A few cells at a time, so that their activations stay in the cache (3x faster on the CPU at K = 72
        than one pass). Chunks hold 2 to _PREDICT_CELLS cells: bmm gives each cell the same numbers
        for any batch of two or more, but takes another kernel for one."""
        views = self.stack.views
        return torch.cat(
            [
                self.forward([v[a:b] for v in views], x.expand(b - a, -1, -1))[1]
                for a, b in blocks.even_chunks(self.stack.k, _PREDICT_CELLS)
            ]
        )


@dataclass
class _Group:
    """Cells a..b-1 of a block, sharing lr and wd: one fused-kernel call steps them all."""

    lrs: tuple[float, ...]  # per epoch
    wd: float
    params: list[torch.Tensor]
    grads: list[torch.Tensor]
    moments: list[torch.Tensor]  # SGD's momentum buffer / Adam's exp_avg
    squares: list[torch.Tensor]  # Adam's exp_avg_sq


class _Optimizer:
    """torch's fused SGD / Adam / AdamW step (+ SGDW decay, + SAM ascent) on a block, group by group."""

    def __init__(self, cells: Sequence[Cell], stack: _Stack, grads: _Stack):
        c = self.cell = cells[0]
        self.stack, self.grads = stack, grads
        self.rho = torch.tensor([x.rho for x in cells], dtype=torch.float64).to(stack.flat)
        self.decoupled = c.wd_mode == "decoupled"
        kept = checkpoint.stacks(c)
        moments = self.moments = stack.like() if "moments" in kept else None
        squares = self.squares = stack.like() if "squares" in kept else None
        self.step_t = torch.zeros((), dtype=torch.float32, device=stack.flat.device)  # Adam's count, as torch keeps it
        self.groups = []
        for (lr, wd), run in groupby(range(len(cells)), key=lambda i: (cells[i].lr, cells[i].wd)):
            idx = list(run)
            a, b = idx[0], idx[-1] + 1
            self.groups.append(
                _Group(
                    lrs=lr_schedule(lr, c.epochs, c.t_max),
                    wd=wd,
                    params=stack.rows(a, b),
                    grads=grads.rows(a, b),
                    moments=moments.rows(a, b) if moments else [],
                    squares=squares.rows(a, b) if squares else [],
                )
            )
        self.steps = 0
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def sam_ascent(self, into: _Stack) -> None:
        """SAM's first step: w + e(w) into `into`, e = rho * g / (||g|| + 1e-12) per cell (ASAM: w^2 g).

        Writing the perturbed weights to a second stack leaves w in place: no copy out and back."""
        params, grads, adaptive = self.stack.views, self.grads.views, self.cell.sam_adaptive
        scaled = [p.abs() * g for p, g in zip(params, grads, strict=True)] if adaptive else grads
        norms = torch.stack([torch.linalg.vector_norm(s, dim=(1, 2)) for s in scaled], dim=1)
        scale = ((torch.linalg.vector_norm(norms, dim=1) + 1e-12).reciprocal() * self.rho).view(-1, 1, 1)
        if adaptive:
            e = torch._foreach_mul(params, params)
            torch._foreach_mul_(e, grads)
        else:
            e = grads
        for p, g, out in zip(params, e, into.views, strict=True):
            torch.addcmul(p, g, scale, out=out)  # = p + g * scale, rounded like the reference's two ops

    def step(self) -> None:
        c = self.cell
        beta1, beta2 = c.adam_betas
        if c.optimizer == "adam":
            self.step_t += 1
        for g in self.groups:
            lr = g.lrs[self.epoch]
            if c.optimizer == "sgd":
                if self.decoupled and g.wd:
                    torch._foreach_mul_(g.params, 1 - lr * g.wd)  # SGDW, as the reference's step pre-hook
                torch._fused_sgd_(
                    g.params, g.grads, g.moments, weight_decay=0.0 if self.decoupled else g.wd, momentum=c.momentum,
                    lr=lr, dampening=0.0, nesterov=False, maximize=False, is_first_step=self.steps == 0,
                )  # fmt: skip
            else:
                adam = torch._fused_adamw_ if self.decoupled else torch._fused_adam_
                adam(
                    g.params, g.grads, g.moments, g.squares, [], [self.step_t] * len(g.params), lr=lr,
                    beta1=beta1, beta2=beta2, weight_decay=g.wd, eps=c.adam_eps, amsgrad=False, maximize=False,
                )  # fmt: skip
        self.steps += 1


def _fit_block(cells, data: Split, max_steps, return_params, curve_every, report, states, return_state) -> list[dict]:
    c, k = cells[0], len(cells)
    n, n_features = data.x_train.shape
    stack = _Stack(k, layer_sizes(n_features, c.hidden), data.x_train.dtype, data.x_train.device)
    stack.load_init([cell.seed for cell in cells])
    grads = stack.like()
    opt = _Optimizer(cells, stack, grads)
    perturbed = stack.like() if c.sam else None
    net = _Net(stack)
    dead = _Dead(stack)
    gens = [shuffle_generator(cell.seed) for cell in cells]
    limit = math.inf if max_steps is None else max_steps
    curves: list[list[dict]] = [[] for _ in cells]
    spe = steps_per_epoch(n, c.batch_size)
    start = states[0]["epoch"] if states[0] else 0  # plan_blocks puts cells of one start epoch together
    if start:
        checkpoint.load(opt, gens, curves, states, n, curve_every)
    for epoch in range(start, c.epochs):
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
            loss = net.loss_and_grad(stack.views, grads.views, xb, yb)
            if not math.isfinite(loss.sum().item()):  # one cheap test; an overflowing sum only costs a look
                dead.add(~torch.isfinite(loss), opt.steps + 1)
            if c.sam:
                opt.sam_ascent(perturbed)
                net.loss_and_grad(perturbed.views, grads.views, xb, yb)
            opt.step()
            dead.restore()
        if curve_every and (epoch + 1) % curve_every == 0 and opt.steps == (epoch + 1) * spe:
            _add_curve_point(curves, net, data, epoch + 1)
        if report is not None:
            report(epoch + 1)
    if curve_every and (not curves[0] or curves[0][-1]["epoch"] * spe != opt.steps):
        epochs_done = opt.steps / spe
        _add_curve_point(curves, net, data, int(epochs_done) if epochs_done.is_integer() else epochs_done)
    results = _results(cells, net, data, opt.steps, dead, return_params, curves if curve_every else None)
    if return_state:  # a state only at the end of an epoch (not after max_steps mid-epoch)
        epochs_done, rest = divmod(opt.steps, spe)
        for i, result in enumerate(results):
            result["state"] = None if rest or not epochs_done else checkpoint.save(opt, i, epochs_done, curves[i])
    return results


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
        self.frozen = [b.index_select(0, self.idx) for b in self.stack.blocks]

    def restore(self) -> None:
        if self.idx is not None:
            for block, frozen in zip(self.stack.blocks, self.frozen, strict=True):
                block.index_copy_(0, self.idx, frozen)

    def all_dead(self) -> bool:
        return len(self.step) == self.k


def _predictions(net: _Net, data: Split) -> tuple[torch.Tensor, torch.Tensor]:
    with torch.no_grad():
        return net.predict(data.x_train), net.predict(data.x_test)


def _add_curve_point(curves, net: _Net, data: Split, epoch) -> None:
    train, test = _predictions(net, data)
    for i, curve in enumerate(curves):
        mse = [prediction_metrics(train[i], data.y_train)[0], prediction_metrics(test[i], data.y_test)[0]]
        curve.append({"epoch": epoch, "train_mse": mse[0], "test_mse": mse[1]})


def _results(cells, net: _Net, data: Split, steps: int, dead: _Dead, return_params: bool, curves) -> list[dict]:
    train, test = _predictions(net, data)
    results = []
    for i in range(len(cells)):
        died = dead.step.get(i)
        result = final_metrics(train[i], test[i], data, steps if died is None else died - 1, died)
        if return_params:
            result["params"] = net.stack.cell_params(i)
        if curves is not None:
            result["curve"] = curves[i]
        results.append(result)
    return results
