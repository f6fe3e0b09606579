"""The stacked engine's weights and network: K cells' MLPs in flat buffers, forward and backward with bmm.

The K cells' weights live stacked, a layer as [K, in, out] and [K, 1, out], in one flat buffer per kind
of state (weights, gradients, moments), so that bmm reads and writes a layer's stack directly. Forward
and backward are written by hand (autograd over the stacked graph is 2-4x slower) and write into buffers
kept from step to step: a step allocates no tensor the size of a layer's activations.
"""

from __future__ import annotations

from itertools import pairwise

import torch

from genboost.train import blocks
from genboost.train.model import init_params

# Each cell's part of a layer is padded with zeros to a multiple of this many elements (a multiple of every
# SIMD width): the fused kernels then run their vector body on every element and never a scalar tail, whose
# rounding can differ, so an element's numbers do not depend on where K or its group puts it.
ALIGN = 64

_PREDICT_CELLS = 4


class Stack:
    """One flat buffer of a state (weights, grads, moments) of K cells.

    Each weight and each bias is a block [K, width] of the buffer (a cell's numbers, padded to ALIGN),
    seen as `views[j]` [K, in, out] or [K, 1, out]. `rows(a, b)` are cells a..b-1's parts of every
    block: contiguous and ALIGN-sized, what one fused optimizer call steps.
    """

    def __init__(self, k: int, sizes: list[int], dtype, device):
        self.k, self.sizes = k, sizes
        shapes = [s for i, o in pairwise(sizes) for s in ((i, o), (1, o))]
        widths = [-(-(i * o) // ALIGN) * ALIGN for i, o in shapes]
        self.flat = torch.zeros(k * sum(widths), dtype=dtype, device=device)
        self.blocks = [b.view(k, w) for b, w in zip(self.flat.split([k * w for w in widths]), widths, strict=True)]
        self.views = [b[:, : i * o].view(k, i, o) for b, (i, o) in zip(self.blocks, shapes, strict=True)]

    def like(self) -> Stack:
        return Stack(self.k, self.sizes, self.flat.dtype, self.flat.device)

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


def _bmm_into(out: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> None:
    if out.is_contiguous():
        torch.bmm(a, b, out=out)
    else:  # a padded layer: bmm into a strided `out` takes another kernel, which rounds differently
        out.copy_(torch.bmm(a, b))


class _Workspace:
    """A step's tensors for batches of `rows` rows per cell, allocated once and overwritten every step
    (fresh tensors of this size each step cost page faults and cold caches).

    `outputs[j]`: layer j's output [K, rows, width] (ReLU'd in place for hidden layers: the next layer's
    input); `back[j]`: the gradient flowing into layer j's output, for j >= 1; `column`: the output layer's
    weight-gradient products before their sum over the batch."""

    def __init__(self, stack: Stack, rows: int):
        k, sizes, like = stack.k, stack.sizes, dict(dtype=stack.flat.dtype, device=stack.flat.device)
        self.x = torch.empty(k * rows, sizes[0], **like)  # index_select's out: the cells' batches, flat
        self.y = torch.empty(k * rows, **like)
        self.outputs = [torch.empty(k, rows, width, **like) for width in sizes[1:]]
        self.back = [torch.empty(k, rows, width, **like) for width in sizes[1:-1]]
        self.column = torch.empty(k, rows, sizes[-2], **like)
        self.diff = torch.empty(k, rows, **like)


class Net:
    """The stacked MLP's forward and hand-written backward (autograd's addmm / relu / mse_loss backward)."""

    def __init__(self, stack: Stack):
        self.stack = stack
        self._workspaces: dict[int, _Workspace] = {}  # by batch rows: the full batch and an epoch's last one

    def workspace(self, rows: int) -> _Workspace:
        if rows not in self._workspaces:
            self._workspaces[rows] = _Workspace(self.stack, rows)
        return self._workspaces[rows]

    def load_batch(self, x: torch.Tensor, y: torch.Tensor, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Rows `idx` (K batches, flat) of x and y into the workspace: ([K, rows, features], [K, rows])."""
        ws = self.workspace(len(idx) // self.stack.k)
        torch.index_select(x, 0, idx, out=ws.x)  # 4x faster than x[idx]
        torch.index_select(y, 0, idx, out=ws.y)
        return ws.x.view(self.stack.k, -1, x.shape[1]), ws.y.view(self.stack.k, -1)

    def forward(self, params, h: torch.Tensor, outputs=None) -> tuple[list[torch.Tensor], torch.Tensor]:
        """(inputs of each layer, predictions [K, B]); h is [K, B, features]. Layer j's output goes into
        `outputs[j]` where given, else into a new tensor."""
        acts = [h]
        n_layers = len(params) // 2
        for layer in range(n_layers):
            out = None if outputs is None else outputs[layer]
            h = torch.bmm(h, params[2 * layer], out=out).add_(params[2 * layer + 1])  # = baddbmm, minus its bias copy
            if layer < n_layers - 1:
                acts.append(h.relu_())
        return acts, h.squeeze(-1)

    def loss_and_grad(self, params, grads, xb: torch.Tensor, yb: torch.Tensor, loss: bool = True):
        """Per-cell batch MSE [K] (None when not `loss`); writes its gradient into `grads`."""
        ws = self.workspace(xb.shape[1])
        acts, pred = self.forward(params, xb, ws.outputs)
        diff = torch.sub(pred, yb, out=ws.diff)
        batch_loss = diff.square().mean(1) if loss else None
        dz = diff.mul_(2.0 / yb.shape[1]).unsqueeze(-1)
        for layer in reversed(range(len(params) // 2)):
            w, grad_w = params[2 * layer], grads[2 * layer]
            # A one-column layer (the output): elementwise products are cheaper than bmm's matrix-vector path.
            column = w.shape[-1] == 1
            if column:
                torch.sum(torch.mul(acts[layer], dz, out=ws.column), 1, keepdim=True, out=grad_w.transpose(1, 2))
            else:
                _bmm_into(grad_w, acts[layer].transpose(1, 2), dz)
            torch.sum(dz, 1, keepdim=True, out=grads[2 * layer + 1])
            if layer:
                da = ws.back[layer - 1]
                if column:
                    torch.mul(dz, w.transpose(1, 2), out=da)
                else:
                    torch.bmm(dz, w.transpose(1, 2), out=da)
                # in place (grad_input=da): 2x faster than a new tensor
                dz = torch.ops.aten.threshold_backward.grad_input(da, acts[layer], 0, grad_input=da)
        return batch_loss

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
