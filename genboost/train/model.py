"""What every trainer shares: the cell, the MLP's shape, initialization and forward pass, batch order and lr
schedule.

The oracle (`genboost.train.oracle`) and the stacked engine (`genboost.train.engine`) both build
their models from these functions, so that the same cell starts from the same weights and sees the
same batches in the same order: that is what makes the two comparable number for number. `forward` is the
model's one forward pass: the trainers and the measures (`genboost.measures`) all run it.
"""

from __future__ import annotations

import math
from contextlib import contextmanager
from functools import cache

import torch

from genboost.config.cell import Cell as Cell  # re-exported: the trainers and tests take it from here
from genboost.data.tensors import Split, load_split

# Seeds the per-cell shuffling stream apart from the per-cell initialization stream.
SHUFFLE_SEED_OFFSET = 0x5EED_0000_0000


def torch_dtype(name: str) -> torch.dtype:
    return {"float32": torch.float32, "float64": torch.float64}[name]


def cells_split(cells, train_csv, test_csv, what: str) -> Split:
    """The data a group of cells trains on (and is measured on): the CSVs in their dtype (float64 cells see the
    CSV's float64 values), the training labels permuted for random-label cells. `what` names the group in the
    error when its cells differ in either."""
    for name in ("dtype", "shuffle_labels"):
        values = {getattr(c, name) for c in cells}
        if len(values) > 1:
            raise RuntimeError(f"{what} mixes cells of {name} {sorted(values)}")
    split = load_split(train_csv, test_csv, dtype=torch_dtype(cells[0].dtype))
    return split.with_shuffled_labels() if cells[0].shuffle_labels else split


# torch.nn.LayerNorm's default epsilon, added to the variance.
NORM_EPS = 1e-5


def layer_sizes(n_features: int, hidden) -> list[int]:
    return [n_features, *hidden, 1]


def param_shapes(sizes: list[int], norm: str = "none") -> list[tuple[int, int]]:
    """The shapes of a model's parameters in nn.Module.parameters() order, biases and norm params as rows:
    per layer W (in, out), b (1, out), then after a hidden layer with a norm its gain (1, out) and bias (1, out)."""
    shapes = []
    for layer, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:], strict=False)):
        shapes += [(fan_in, fan_out), (1, fan_out)]
        if norm != "none" and layer < len(sizes) - 2:
            shapes += [(1, fan_out), (1, fan_out)]
    return shapes


def model_tensors(params, norm_params=()) -> list[torch.Tensor]:
    """A model's tensors in `param_shapes` order from its per-layer (W, b) and per-hidden-layer (gain, bias) pairs
    (none without a norm)."""
    norms = list(norm_params)
    return [t for i, wb in enumerate(params) for t in (*wb, *(norms[i] if i < len(norms) else ()))]


def layers_of(tensors, normed: bool) -> list[tuple]:
    """A model's tensors in `param_shapes` order (W0, b0, [gain0, bias0,] W1, ...) as `forward`'s layers: per layer
    (W, b, gain, bias), gain and bias None where no norm follows (the output layer, or `normed` False)."""
    tensors, layers = list(tensors), []
    while tensors:
        with_norm = normed and len(tensors) > 2
        w, b, *rest = tensors[: 4 if with_norm else 2]
        layers.append((w, b, *(rest or (None, None))))
        tensors = tensors[4 if with_norm else 2 :]
    return layers


def forward(layers, x: torch.Tensor, ws=None) -> tuple[list[torch.Tensor], torch.Tensor]:
    """The MLP: per layer x @ W + b, then on a hidden layer its LayerNorm (where it has one) and ReLU.

    `layers` are per layer (W [in, out], b, gain, bias) as `layers_of` gives them, of one model (x [n, in]) or of
    K stacked ones (W [K, in, out], b [K, 1, out], x [K, n, in]). Returns (each layer's input, the predictions
    [n] or [K, n]). Autograd differentiates it (the oracle's training, the measures' gradients and Hessians); where
    the workspace `ws` is given (the engine's, with `outputs`, `normed`, `rstd` per layer) it writes into it
    instead, for the engine's hand-written backward.
    """
    acts, h, last = [x], x, len(layers) - 1
    for layer, (w, b, gain, bias) in enumerate(layers):
        h = linear(h, w, b, out=None if ws is None else ws.outputs[layer])
        if layer < last:
            saved = None if ws is None or gain is None else (ws.normed[layer], ws.rstd[layer])
            h = activation(h, gain, bias, saved)
            acts.append(h)
    return acts, h.squeeze(-1)


def linear(h: torch.Tensor, w: torch.Tensor, b: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
    """h @ w + b (into `out` where given): the matmul, then the bias added in place (baddbmm minus its bias copy)."""
    return matmul(h, w, out=out).add_(b)


def matmul(a: torch.Tensor, b: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
    """a @ b, with a stack of one run as a stack of two: bmm takes another kernel (gemv) for one matrix-vector
    product, which rounds differently; a model's numbers then do not depend on how many are stacked with it."""
    if a.dim() == 3 and a.shape[0] == 1 and out is None:
        return torch.bmm(a.expand(2, *a.shape[1:]), b.expand(2, *b.shape[1:]))[:1]
    return torch.matmul(a, b, out=out)


def activation(h: torch.Tensor, gain=None, bias=None, saved=None) -> torch.Tensor:
    """A hidden layer's LayerNorm (where `gain` is given) and ReLU of its linear output h, ReLU in place."""
    if gain is not None:
        h = layer_norm(h, gain, bias, saved)
    return h.relu_()


def layer_norm(h: torch.Tensor, gain, bias, saved=None) -> torch.Tensor:
    """(h - mean) / sqrt(var + NORM_EPS) * gain + bias over h's last dim (var biased, as torch.nn.LayerNorm).

    In new tensors, or where `saved` (normed, rstd) is given in place: h becomes the output, the normalized h and
    1 / std go into `saved` (the engine's backward reads them). The same ops either way: the same numbers."""
    mean = h.mean(-1, keepdim=True)
    inv = torch.var(h, -1, correction=0, keepdim=True).add(NORM_EPS).rsqrt()
    if saved is None:
        return (h - mean).mul(inv).mul(gain).add(bias)
    normed, rstd = saved
    torch.sub(h, mean, out=normed).mul_(inv)
    rstd.copy_(inv)
    return torch.mul(normed, gain, out=h).add_(bias)


def init_params(
    seed: int, sizes: list[int], dtype: torch.dtype = torch.float32
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Per-layer (W [in, out], b [out]), drawn like nn.Linear's default: U(-1/sqrt(in), 1/sqrt(in)).

    Drawn in float32 from the cell's own generator, then cast, so float32 and float64 runs start
    from the same numbers.
    """
    gen = torch.Generator().manual_seed(seed)
    params = []
    for fan_in, fan_out in zip(sizes[:-1], sizes[1:], strict=False):
        bound = 1.0 / math.sqrt(fan_in)
        w = (torch.rand(fan_in, fan_out, generator=gen) * 2 - 1) * bound
        b = (torch.rand(fan_out, generator=gen) * 2 - 1) * bound
        params.append((w.to(dtype), b.to(dtype)))
    return params


def init_norm_params(sizes: list[int], dtype: torch.dtype = torch.float32) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Per hidden layer (gain [out], bias [out]) of its LayerNorm: ones and zeros, as torch.nn.LayerNorm starts."""
    return [(torch.ones(width, dtype=dtype), torch.zeros(width, dtype=dtype)) for width in sizes[1:-1]]


def shuffle_generator(seed: int) -> torch.Generator:
    """The cell's own shuffling stream: one torch.randperm(n, generator=...) per epoch."""
    return torch.Generator().manual_seed(seed + SHUFFLE_SEED_OFFSET)


def steps_per_epoch(n: int, batch_size: int) -> int:
    """The last, smaller batch is kept (as DataLoader's drop_last=False)."""
    return math.ceil(n / batch_size)


@cache
def lr_schedule(lr: float, epochs: int, t_max: int) -> tuple[float, ...]:
    """The lr of each epoch under torch's CosineAnnealingLR (eta_min 0), stepped once per epoch.

    The same float operations, in the same order, as the scheduler's recursive form
    (`CosineAnnealingLR.get_lr`), so the numbers equal the oracle's bit for bit (tested
    against the real scheduler). Reading them off a real scheduler would need a torch optimizer,
    whose first construction imports torch._dynamo: 1-2 s in every training process.
    """
    eta_min = 0.0
    lrs = [lr]
    for epoch in range(1, epochs):
        last = lrs[-1]
        if (epoch - 1 - t_max) % (2 * t_max) == 0:  # the restart after a trough, as torch special-cases it
            lrs.append(last + (lr - eta_min) * (1 - math.cos(math.pi / t_max)) / 2)
        else:
            ratio = (1 + math.cos(math.pi * epoch / t_max)) / (1 + math.cos(math.pi * (epoch - 1) / t_max))
            lrs.append(ratio * (last - eta_min) + eta_min)
    return tuple(lrs)


def final_metrics(train_pred, test_pred, split: Split, steps: int, diverged_step: int | None) -> dict:
    """A trained cell's result: MSE and accuracy on the whole splits, divergence and steps done."""
    train_mse, train_acc = prediction_metrics(train_pred, split.y_train, split.classes)
    test_mse, test_acc = prediction_metrics(test_pred, split.y_test, split.classes)
    return dict(
        train_mse=train_mse,
        test_mse=test_mse,
        train_accuracy=train_acc,
        test_accuracy=test_acc,
        diverged=diverged_step is not None,
        diverged_step=diverged_step,
        steps=steps,
    )


def prediction_metrics(pred: torch.Tensor, y: torch.Tensor, classes: int | None = None) -> tuple[float, float | None]:
    """(MSE, accuracy): accuracy rounds the prediction clamped to the classes 0..classes-1 of an ordinal label;
    None for a numeric label (classes None), where no prediction is right or wrong."""
    mse = torch.mean((pred - y) ** 2).item()
    if classes is None:
        return mse, None
    acc = (pred.clamp(0, classes - 1).round() == y).to(torch.float64).mean().item()
    return mse, acc


def flush_denormal_enabled() -> bool:
    """Whether the CPU flushes denormals now (torch has a setter but no getter, so probe it)."""
    tiny = torch.tensor([1e-310], dtype=torch.float64)
    return (tiny * 1.0).item() == 0.0


@contextmanager
def flush_denormal(enabled: bool):
    """Set torch's process-wide denormal flushing for the block, restoring the previous mode after."""
    previous = flush_denormal_enabled()
    torch.set_flush_denormal(enabled)
    try:
        yield
    finally:
        torch.set_flush_denormal(previous)
