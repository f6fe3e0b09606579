"""A cell's training state: what it needs to go on later exactly as if it had never stopped (the second
chance goes on from main's end states), how the engine saves and loads it, and when a stored one is unfit."""

from __future__ import annotations

import torch

from genboost.config.optimizers import FIRST_MOMENT, SECOND_MOMENT, optimizer
from genboost.train.model import Cell, Split, layer_sizes, param_shapes, steps_per_epoch, torch_dtype

WEIGHTS = "stack"  # the name of the weights' stack, beside the optimizer's moments
STACKS = (WEIGHTS, FIRST_MOMENT, SECOND_MOMENT)


def stacks(cell: Cell) -> tuple[str, ...]:
    """The stacks a cell keeps: its weights, and the moments its optimizer keeps (genboost.config.optimizers)."""
    return (WEIGHTS, *optimizer(cell.optimizer).state(cell))


def state_problem(cell: Cell, state: dict, split: Split) -> str | None:
    """Why `state` cannot be where `cell` goes on from, or None when it can.

    Its epoch must lie in the cell's run and its steps make whole epochs of the split; each tensor must have
    the shape and dtype of the cell's own (`load`'s copy_ would broadcast a wrong shape silently) and be
    finite; its curve must be a list of points.
    """
    epoch, steps = state.get("epoch"), state.get("steps")
    if type(epoch) is not int or not 0 < epoch <= cell.epochs:
        return f"its epoch {epoch!r} is not in 1..{cell.epochs}"
    n, n_features = split.x_train.shape
    if steps != epoch * steps_per_epoch(n, cell.batch_size):
        return f"its {steps!r} steps are not {epoch} epochs of {n} rows in batches of {cell.batch_size}"
    shapes = param_shapes(layer_sizes(n_features, cell.hidden), cell.norm)  # a norm's gains and biases included
    dtype = torch_dtype(cell.dtype)
    for name in stacks(cell):
        tensors = state.get(name)
        if not isinstance(tensors, list) or not all(isinstance(t, torch.Tensor) for t in tensors):
            return f"its {name!r} is not a list of tensors"
        if [tuple(t.shape) for t in tensors] != shapes or any(t.dtype != dtype for t in tensors):
            return f"its {name!r} tensors are not {len(shapes)} {cell.dtype} tensors of shapes {shapes}"
        if not all(bool(torch.isfinite(t).all()) for t in tensors):
            return f"its {name!r} tensors are not all finite"
    curve = state.get("curve")
    if not isinstance(curve, list) or not all(isinstance(p, dict) and "epoch" in p for p in curve):
        return "its curve is not a list of points"
    return None


def save(opt, i: int, epoch: int, curve: list[dict]) -> dict:
    """Cell i's weights, optimizer moments, steps and curve after `epoch` epochs (tensors on the CPU)."""
    tensors = {name: [v[i].cpu().clone() for v in stack.views] for name, stack in opt.stacks.items()}
    return {"epoch": epoch, "steps": opt.steps, "curve": list(curve), **tensors}


def load(opt, gens, curves, states, n: int, curve_every) -> None:
    """Load each cell's state; the shuffling streams skip the epochs already done (one permutation each)."""
    steps = {s["steps"] for s in states}
    if len(steps) != 1:
        raise ValueError(f"cells of one block resume from different step counts {sorted(steps)}")
    for i, state in enumerate(states):
        for name, stack in opt.stacks.items():
            for view, value in zip(stack.views, state[name], strict=True):
                view[i].copy_(value)
        for _ in range(state["epoch"]):
            torch.randperm(n, generator=gens[i])
        # A shorter run ends its curve with a point at its last epoch, which the longer run does not record.
        curves[i].extend(p for p in state["curve"] if curve_every and p["epoch"] % curve_every == 0)
    opt.steps = steps.pop()
    opt.step_t.fill_(opt.steps)
