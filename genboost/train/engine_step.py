"""The stacked engine's update: SAM's ascent, then torch's fused SGD / Adam / AdamW kernel, on a block of cells.

The update computes what torch's fused kernels compute (`torch.optim`'s `fused=True`), after SAM's ascent
with each cell's rho. Adam is torch's kernel itself, one call per group of cells that share lr and wd (it
takes one lr and one wd a call). SGD is two or three elementwise ops over the whole block, each cell's lr
and wd a per-row tensor: `addcmul` rounds once, like the kernel's fused multiply-adds, so the numbers are
the kernel's bit for bit (tests/test_engine_pin.py) at a tenth of the calls. Every op acts on each cell's
slice alone, so a cell's numbers do not depend on its block-mates.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import groupby

import torch

from genboost.config.optimizers import ADAM, FIRST_MOMENT, SECOND_MOMENT, SGD
from genboost.train import checkpoint
from genboost.train.engine_net import Stack
from genboost.train.model import Cell, lr_schedule


@dataclass
class _Group:
    """Cells a..b-1 of a block, sharing lr and wd: one fused-kernel call steps them all."""

    lrs: tuple[float, ...]  # per epoch
    wd: float
    params: list[torch.Tensor]
    grads: list[torch.Tensor]
    moments: list[torch.Tensor]  # SGD's momentum buffer / Adam's exp_avg
    squares: list[torch.Tensor]  # Adam's exp_avg_sq
    counts: list[torch.Tensor]  # Adam's step count, once per tensor as the kernel reads it


def _rows(stack: Stack, a: int, b: int, norm_only: bool, with_norm: bool) -> list[torch.Tensor]:
    """Cells a..b-1's rows of the norm's blocks (`norm_only`), else of every block (the norm's only `with_norm`)."""
    return stack.norm_rows(a, b) if norm_only else stack.rows(a, b, norm=with_norm)


class Optimizer:
    """torch's fused SGD / Adam / AdamW step (+ SGDW decay, + SAM ascent) on a block, group by group.

    `stacks` (the weights and the moments the optimizer keeps, by their names in `checkpoint.STACKS`), `steps` and
    `step_t` are what `checkpoint` saves and loads."""

    def __init__(self, cells: Sequence[Cell], stack: Stack, grads: Stack):
        c = self.cell = cells[0]
        self.stack, self.grads = stack, grads
        self.rho = torch.tensor([x.rho for x in cells], dtype=torch.float64).to(stack.flat)
        self.decoupled = c.wd_mode == "decoupled"
        self.stacks = {name: stack if name == checkpoint.WEIGHTS else stack.like() for name in checkpoint.stacks(c)}
        moments, squares = self.stacks.get(FIRST_MOMENT), self.stacks.get(SECOND_MOMENT)  # None where not kept
        self.step_t = torch.zeros((), dtype=torch.float32, device=stack.flat.device)  # Adam's count, as torch keeps it
        # Without `wd_norm_params`, a norm's gains and biases are a group of their own, with no decay.
        self._norm_decayed = c.wd_norm_params or not stack.norm_blocks
        self.groups = []
        for (lr, wd), run in groupby(range(len(cells)), key=lambda i: (cells[i].lr, cells[i].wd)):
            idx = list(run)
            a, b = idx[0], idx[-1] + 1
            parts = [(wd, False)] if self._norm_decayed else [(wd, False), (0.0, True)]
            for group_wd, norm_only in parts:
                params = _rows(stack, a, b, norm_only, self._norm_decayed)
                self.groups.append(
                    _Group(
                        lrs=lr_schedule(lr, c.epochs, c.t_max),
                        wd=group_wd,
                        params=params,
                        grads=_rows(grads, a, b, norm_only, self._norm_decayed),
                        moments=_rows(moments, a, b, norm_only, self._norm_decayed) if moments else [],
                        squares=_rows(squares, a, b, norm_only, self._norm_decayed) if squares else [],
                        counts=[self.step_t] * len(params),
                    )
                )
        update = UPDATES[c.optimizer]
        self._update = update.step
        # SGD: each cell's -lr (set each epoch) on every element of its rows; its wd / lr-scaled decay on the
        # rows of the cells with wd, in runs of adjacent cells (the kernel leaves a cell without wd alone).
        self._lrs = [lr_schedule(x.lr, c.epochs, c.t_max) for x in cells]
        self._minus_lr = stack.like() if update.per_row_lr else None
        self._decayed = [
            (idx[0], idx[-1] + 1)
            for has_wd, run in groupby(range(len(cells)), key=lambda i: cells[i].wd != 0)
            if has_wd and (idx := list(run))
        ]
        self._wds = torch.tensor([x.wd for x in cells], dtype=torch.float64)
        self._wd_rows: list[tuple[torch.Tensor, list, list]] = []
        self.steps = 0
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch
        if self._minus_lr is not None:
            lrs = torch.tensor([lrs[epoch] for lrs in self._lrs], dtype=torch.float64)
            # the kernel's casts: lr and wd (or SGDW's 1 - lr * wd, in double) to the weights' dtype
            factor = 1 - lrs * self._wds if self.decoupled else self._wds
            factor = factor.to(self.stack.flat).view(-1, 1)
            for block in self._minus_lr.blocks:
                block.copy_((-lrs).to(block).view(-1, 1).expand_as(block))
            decayed = self._norm_decayed
            self._wd_rows = [
                (factor[a:b], self.stack.rows(a, b, norm=decayed), self.grads.rows(a, b, norm=decayed))
                for a, b in self._decayed
            ]

    def epoch_lrs(self, epoch: int) -> list[float]:
        """Each cell's lr in `epoch` (0-based) of its schedule."""
        return [lrs[epoch] for lrs in self._lrs]

    def sam_ascent(self, into: Stack) -> None:
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
            torch.addcmul(p, g, scale, out=out)  # = p + g * scale, rounded like the oracle's two ops

    def step(self) -> None:
        self._update(self)
        self.steps += 1

    def _sgd(self) -> None:
        c, grads, params = self.cell, self.grads.flat, self.stack.flat
        for factor, p_rows, g_rows in self._wd_rows:
            for p, g in zip(p_rows, g_rows, strict=True):
                if self.decoupled:
                    p.mul_(factor)  # SGDW, as the oracle's step pre-hook
                else:
                    torch.addcmul(g, p, factor, out=g)  # g + wd * p
        if c.momentum:
            moments = self.stacks[FIRST_MOMENT].flat
            if self.steps == 0:
                moments.copy_(grads)
            else:
                moments.mul_(c.momentum).add_(grads)
            grads = moments
        params.addcmul_(grads, self._minus_lr.flat)

    def _adam(self) -> None:
        c = self.cell
        beta1, beta2 = c.adam_betas
        adam = torch._fused_adamw_ if self.decoupled else torch._fused_adam_
        self.step_t += 1
        for g in self.groups:
            adam(
                g.params, g.grads, g.moments, g.squares, [], g.counts, lr=g.lrs[self.epoch],
                beta1=beta1, beta2=beta2, weight_decay=g.wd, eps=c.adam_eps, amsgrad=False, maximize=False,
            )  # fmt: skip


@dataclass(frozen=True)
class _Update:
    step: Callable[[Optimizer], None]  # an Optimizer's update of its block
    per_row_lr: bool  # whether it reads each cell's lr from a stack of -lr (else from its groups)


# Each optimizer of genboost.config.optimizers as the engine steps it (tests/test_optimizers.py checks that the
# two name the same optimizers).
UPDATES = {SGD: _Update(Optimizer._sgd, per_row_lr=True), ADAM: _Update(Optimizer._adam, per_row_lr=False)}
