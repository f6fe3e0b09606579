"""The stacked engine's weights and network: K cells' MLPs in flat buffers, forward and backward with bmm.

The K cells' weights live stacked, a layer as [K, in, out] and [K, 1, out], in one flat buffer per kind
of state (weights, gradients, moments), so that bmm reads and writes a layer's stack directly. Forward
and backward are written by hand (autograd over the stacked graph is 2-4x slower) and write into buffers
kept from step to step: a step allocates no tensor the size of a layer's activations.
"""

from __future__ import annotations

import torch

from genboost.train import blocks, model
from genboost.train.model import init_norm_params, init_params, param_shapes

# Each cell's part of a layer is padded with zeros to a multiple of this many elements (a multiple of every
# SIMD width): the fused kernels then run their vector body on every element and never a scalar tail, whose
# rounding can differ, so an element's numbers do not depend on where K or its group puts it.
ALIGN = 64

_PREDICT_CELLS = 4


class Stack:
    """One flat buffer of a state (weights, grads, moments) of K cells.

    Each weight and each bias (and with a norm, each gain and norm bias) is a block [K, width] of the buffer
    (a cell's numbers, padded to ALIGN), seen as `views[j]` [K, in, out] or [K, 1, out], in the order of
    `model.param_shapes`. `layers[l]` are layer l's view indices (W, b, gain, norm bias; the last two None
    without a norm). `rows(a, b)` are cells a..b-1's parts of every block: contiguous and ALIGN-sized,
    what one fused optimizer call steps.
    """

    def __init__(self, k: int, sizes: list[int], dtype, device, norm: str = "none"):
        self.k, self.sizes, self.norm = k, sizes, norm
        shapes = param_shapes(sizes, norm)
        self.layers, j = [], 0
        for layer in range(len(sizes) - 1):
            normed = norm != "none" and layer < len(sizes) - 2
            self.layers.append((j, j + 1, j + 2 if normed else None, j + 3 if normed else None))
            j += 4 if normed else 2
        self.norm_blocks = [j for _, _, g, beta in self.layers if g is not None for j in (g, beta)]
        widths = [-(-(i * o) // ALIGN) * ALIGN for i, o in shapes]
        self.flat = torch.zeros(k * sum(widths), dtype=dtype, device=device)
        self.blocks = [b.view(k, w) for b, w in zip(self.flat.split([k * w for w in widths]), widths, strict=True)]
        self.views = [b[:, : i * o].view(k, i, o) for b, (i, o) in zip(self.blocks, shapes, strict=True)]

    def like(self) -> Stack:
        return Stack(self.k, self.sizes, self.flat.dtype, self.flat.device, self.norm)

    def rows(self, a: int, b: int, norm: bool = True) -> list[torch.Tensor]:
        """Cells a..b-1's parts of every block (without the norm's gains and biases unless `norm`)."""
        return [block[a:b] for j, block in enumerate(self.blocks) if norm or j not in self.norm_blocks]

    def norm_rows(self, a: int, b: int) -> list[torch.Tensor]:
        """Cells a..b-1's parts of the norm's gains and biases."""
        return [self.blocks[j][a:b] for j in self.norm_blocks]

    def load_init(self, seeds: list[int]) -> None:
        """Cell i's weights from `init_params(seeds[i], ...)` (a norm's gain 1 and bias 0), as the oracle starts."""
        norms = init_norm_params(self.sizes, self.flat.dtype) if self.norm_blocks else []
        for i, seed in enumerate(seeds):
            linear = init_params(seed, self.sizes, self.flat.dtype)
            for (w, b, _, _), (init_w, init_b) in zip(self.layers, linear, strict=True):
                self.views[w][i].copy_(init_w)
                self.views[b][i, 0].copy_(init_b)
            for (_, _, g, beta), (init_g, init_beta) in zip(self.layers, norms, strict=False):
                self.views[g][i, 0].copy_(init_g)
                self.views[beta][i, 0].copy_(init_beta)

    def cell_params(self, i: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Cell i's (W [in, out], b [out]) per layer, as the oracle holds them."""
        return [(self.views[w][i].cpu().clone(), self.views[b][i, 0].cpu().clone()) for w, b, _, _ in self.layers]

    def cell_norm_params(self, i: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Cell i's (gain [out], bias [out]) per hidden layer's norm; [] without a norm."""
        v, normed = self.views, [(g, beta) for _, _, g, beta in self.layers if g is not None]
        return [(v[g][i, 0].cpu().clone(), v[beta][i, 0].cpu().clone()) for g, beta in normed]

    def hidden_weight_norms(self) -> torch.Tensor:
        """[K, hidden layers]: each cell's Frobenius norm of each hidden layer's W (its bias left out)."""
        hidden = [self.views[w] for w, _, _, _ in self.layers[:-1]]
        return torch.stack([torch.linalg.vector_norm(v, dim=(1, 2)) for v in hidden], dim=1)


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
    weight-gradient products before their sum over the batch. With a norm, `normed[j]` holds hidden layer j's
    normalized output (x - mean) / std, `rstd[j]` its 1 / std per row and `scratch[j]` a product of the backward."""

    def __init__(self, stack: Stack, rows: int):
        k, sizes, like = stack.k, stack.sizes, dict(dtype=stack.flat.dtype, device=stack.flat.device)
        self.x = torch.empty(k * rows, sizes[0], **like)  # index_select's out: the cells' batches, flat
        self.y = torch.empty(k * rows, **like)
        self.outputs = [torch.empty(k, rows, width, **like) for width in sizes[1:]]
        self.back = [torch.empty(k, rows, width, **like) for width in sizes[1:-1]]
        self.column = torch.empty(k, rows, sizes[-2], **like)
        self.diff = torch.empty(k, rows, **like)
        normed = sizes[1:-1] if stack.norm_blocks else []
        self.normed = [torch.empty(k, rows, width, **like) for width in normed]
        self.scratch = [torch.empty(k, rows, width, **like) for width in normed]
        self.rstd = [torch.empty(k, rows, 1, **like) for _ in normed]


class Net:
    """The stacked MLP's forward and hand-written backward (autograd's addmm / layer_norm / relu / mse_loss
    backward)."""

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

    def forward(self, params, h: torch.Tensor, ws: _Workspace | None = None) -> tuple[list[torch.Tensor], torch.Tensor]:
        """`model.forward` of the K cells on `params` (views in the stack's order), h [K, B, features]: (inputs of
        each layer, predictions [K, B]). Layer j's output (and its norm's saved tensors) go into the workspace `ws`
        where given."""
        layers = [tuple(None if j is None else params[j] for j in layer) for layer in self.stack.layers]
        return model.forward(layers, h, ws)

    def loss_and_grad(self, params, grads, xb: torch.Tensor, yb: torch.Tensor, loss: bool = True):
        """Per-cell batch MSE [K] (None when not `loss`); writes its gradient into `grads`."""
        ws = self.workspace(xb.shape[1])
        acts, pred = self.forward(params, xb, ws)
        diff = torch.sub(pred, yb, out=ws.diff)
        batch_loss = diff.square().mean(1) if loss else None
        dz = diff.mul_(2.0 / yb.shape[1]).unsqueeze(-1)
        layers = self.stack.layers
        for layer in reversed(range(len(layers))):
            w, grad_w = params[layers[layer][0]], grads[layers[layer][0]]
            # A one-column layer (the output): elementwise products are cheaper than bmm's matrix-vector path.
            column = w.shape[-1] == 1
            if column:
                torch.sum(torch.mul(acts[layer], dz, out=ws.column), 1, keepdim=True, out=grad_w.transpose(1, 2))
            else:
                _bmm_into(grad_w, acts[layer].transpose(1, 2), dz)
            torch.sum(dz, 1, keepdim=True, out=grads[layers[layer][1]])
            if layer:
                da = ws.back[layer - 1]
                if column:
                    torch.mul(dz, w.transpose(1, 2), out=da)
                else:
                    torch.bmm(dz, w.transpose(1, 2), out=da)
                # in place (grad_input=da): 2x faster than a new tensor
                dz = torch.ops.aten.threshold_backward.grad_input(da, acts[layer], 0, grad_input=da)
                _, _, g, beta = layers[layer - 1]
                if g is not None:
                    saved = ws.normed[layer - 1], ws.rstd[layer - 1], ws.scratch[layer - 1]
                    _layer_norm_backward(dz, params[g], grads[g], grads[beta], *saved)
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


def _layer_norm_backward(dy: torch.Tensor, gain, grad_gain, grad_bias, normed, rstd, scratch) -> None:
    """The gradient through `model.layer_norm`: the gain's and bias's into `grad_gain`, `grad_bias` [K, 1, width];
    dy (the gradient of its output) becomes in place that of its input:
    rstd * (dx^ - mean(dx^) - x^ * mean(dx^ * x^)), with dx^ = dy * gain."""
    torch.sum(torch.mul(dy, normed, out=scratch), 1, keepdim=True, out=grad_gain)
    torch.sum(dy, 1, keepdim=True, out=grad_bias)
    dy.mul_(gain)
    projection = torch.mul(dy, normed, out=scratch).mean(-1, keepdim=True)
    dy.sub_(dy.mean(-1, keepdim=True))
    dy.addcmul_(normed, projection, value=-1).mul_(rstd)
