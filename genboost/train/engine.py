"""The stacked engine: trains a block of K cells at once, number for number like `genboost.train.oracle`.

The K cells' weights live stacked in flat buffers (`engine_net.Stack`), the forward and backward are
written by hand with bmm (`engine_net.Net`), and the update is torch's fused SGD / Adam / AdamW kernel
after SAM's ascent (`engine_step.Optimizer`). Every op acts on each cell's slice alone, in the same way
whatever K is, so a cell's numbers do not depend on its block-mates (CPU: bit-identical, see
`tests/test_engine.py`); `tests/test_engine_pin.py` pins them on the real data.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence

import torch

from genboost.train import blocks, checkpoint
from genboost.train.engine_net import Net, Stack
from genboost.train.engine_step import Optimizer
from genboost.train.model import (
    Cell,
    Split,
    final_metrics,
    flush_denormal,
    layer_sizes,
    prediction_metrics,
    shuffle_generator,
    steps_per_epoch,
    torch_dtype,
)


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
        # The optimizer steps each (lr, wd) run at once, and the cells with wd as one run.
        idx = sorted(idx, key=lambda i: (cells[i].wd, cells[i].lr))
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


def _fit_block(cells, data: Split, max_steps, return_params, curve_every, report, states, return_state) -> list[dict]:
    c, k = cells[0], len(cells)
    n, n_features = data.x_train.shape
    stack = Stack(k, layer_sizes(n_features, c.hidden), data.x_train.dtype, data.x_train.device, c.norm)
    stack.load_init([cell.seed for cell in cells])
    grads = stack.like()
    opt = Optimizer(cells, stack, grads)
    perturbed = stack.like() if c.sam else None
    net = Net(stack)
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
        # Generators stay on the CPU (as in the oracle); only the index tensor moves.
        perm = torch.stack([torch.randperm(n, generator=g) for g in gens]).to(data.x_train.device)
        opt.set_epoch(epoch)
        for idx in _batches(perm, c.batch_size):
            if opt.steps >= limit:
                break
            xb, yb = net.load_batch(data.x_train, data.y_train, idx)
            loss = net.loss_and_grad(stack.views, grads.views, xb, yb)
            if not math.isfinite(loss.sum().item()):  # one cheap test; an overflowing sum only costs a look
                dead.add(~torch.isfinite(loss), opt.steps + 1)
            if c.sam:
                opt.sam_ascent(perturbed)
                net.loss_and_grad(perturbed.views, grads.views, xb, yb, loss=False)
            opt.step()
            dead.restore()
        if curve_every and (epoch + 1) % curve_every == 0 and opt.steps == (epoch + 1) * spe:
            _add_curve_point(curves, net, data, epoch + 1, opt.epoch_lrs(epoch))
        if report is not None:
            report(epoch + 1)
    if curve_every and (not curves[0] or curves[0][-1]["epoch"] * spe != opt.steps):
        epochs_done = opt.steps / spe
        last = opt.epoch_lrs(min(math.ceil(epochs_done), c.epochs) - 1) if opt.steps else None
        _add_curve_point(curves, net, data, int(epochs_done) if epochs_done.is_integer() else epochs_done, last)
    results = _results(cells, net, data, opt, dead, return_params, curves if curve_every else None)
    if return_state:  # a state only at the end of an epoch (not after max_steps mid-epoch)
        epochs_done, rest = divmod(opt.steps, spe)
        for i, result in enumerate(results):
            result["state"] = None if rest or not epochs_done else checkpoint.save(opt, i, epochs_done, curves[i])
    return results


def _batches(perm: torch.Tensor, batch_size: int) -> list[torch.Tensor]:
    """The epoch's batches: each the K cells' row indices one after the other, [K * rows], from the cells'
    permutations `perm` [K, n]. One copy for the epoch, not one per step."""
    k, n = perm.shape
    whole = n - n % batch_size
    batches = list(perm[:, :whole].view(k, -1, batch_size).transpose(0, 1).reshape(-1, k * batch_size))
    return batches + ([perm[:, whole:].reshape(-1)] if whole < n else [])


class _Dead:
    """Cells whose batch loss went non-finite: they keep the weights they had then (the others go on)."""

    def __init__(self, stack: Stack):
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


def _predictions(net: Net, data: Split) -> tuple[torch.Tensor, torch.Tensor]:
    with torch.no_grad():
        return net.predict(data.x_train), net.predict(data.x_test)


def _add_curve_point(curves, net: Net, data: Split, epoch, lrs: list[float] | None) -> None:
    """Train and test MSE, and each hidden layer's weight norm and effective lr (`_layer_norms`)."""
    train, test = _predictions(net, data)
    layers = _layer_norms(net.stack, lrs)
    for i, curve in enumerate(curves):
        mse = [prediction_metrics(train[i], data.y_train)[0], prediction_metrics(test[i], data.y_test)[0]]
        curve.append({"epoch": epoch, "train_mse": mse[0], "test_mse": mse[1], **layers[i]})


def _layer_norms(stack: Stack, lrs: list[float] | None) -> list[dict]:
    """Per cell, `weight_norm_l<l>`: hidden layer l's ||W|| (Frobenius, 1-based l), and `eff_lr_l<l>`: the
    effective step lr / ||W||^2 of that layer where a norm follows it (then the output is invariant to W's scale,
    and a step of lr moves W's direction as a step of lr / ||W||^2 would at unit norm); None without a norm or
    before any step. lr is each cell's lr in the epoch last trained (`lrs`, None before the first step)."""
    norms = stack.hidden_weight_norms().tolist()
    out = []
    for i, row in enumerate(norms):
        values = {f"weight_norm_l{j + 1}": v for j, v in enumerate(row)}
        for j, v in enumerate(row):
            scale_invariant = stack.norm_blocks and lrs is not None and v > 0
            values[f"eff_lr_l{j + 1}"] = lrs[i] / v**2 if scale_invariant else None
        out.append(values)
    return out


def _results(cells, net: Net, data: Split, opt: Optimizer, dead: _Dead, return_params: bool, curves) -> list[dict]:
    train, test = _predictions(net, data)
    spe = steps_per_epoch(data.x_train.shape[0], cells[0].batch_size)
    last_epoch = min(math.ceil(opt.steps / spe), cells[0].epochs) - 1
    layers = _layer_norms(net.stack, opt.epoch_lrs(last_epoch) if opt.steps else None)
    results = []
    for i in range(len(cells)):
        died = dead.step.get(i)
        result = final_metrics(train[i], test[i], data, opt.steps if died is None else died - 1, died)
        result["layers"] = layers[i]
        if return_params:
            result["params"] = net.stack.cell_params(i)
            if net.stack.norm_blocks:
                result["norm_params"] = net.stack.cell_norm_params(i)
        if curves is not None:
            result["curve"] = curves[i]
        results.append(result)
    return results
