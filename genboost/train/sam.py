"""Sharpness-Aware Minimization (SAM, Foret et al. 2021) and its adaptive form (ASAM, Kwon et al. 2021).

The interface is the one PyTorch users know from davda54/sam:

=====================================  ==========================================================
``SAM(params, base_optimizer, rho=0.05, adaptive=False, **kwargs)``
                                       ``base_optimizer`` is a class (e.g. ``torch.optim.SGD``),
                                       built on this optimizer's param groups with ``kwargs``.
``first_step(zero_grad=False)``        climb to ``w + e(w)``, ``e = rho * g / (||g|| + 1e-12)``
                                       (ASAM: ``e = w**2 * g * rho / (|| |w| * g || + 1e-12)``).
``second_step(zero_grad=False)``       restore ``w``, then ``base_optimizer.step()`` with the
                                       gradient taken at ``w + e(w)``.
``step(closure)``                      both steps; the gradient at ``w`` must already be there and
                                       ``closure`` must do a full forward-backward. Returns None.
``base_optimizer``                     the wrapped optimizer; give it to lr schedulers (its
                                       ``param_groups`` are this optimizer's param groups).
``state_dict()`` / ``load_state_dict`` the base optimizer's state (momentum, Adam moments) and the
                                       shared param groups (lr, rho, adaptive, ...).
=====================================  ==========================================================

``||g||`` is one norm over all parameters of all groups, in ``param_groups`` order (the norm of the
stack of per-tensor 2-norms). With ``rho == 0`` (in every group) ``step`` takes only the base step
with the gradients already there and never calls the closure, so SAM off costs nothing extra.

Weight decay enters only through the base optimizer's ``weight_decay`` (or a decoupled decay applied
before the base step), so it is NOT part of the perturbation: the ascent direction is the loss
gradient alone, and the descent uses the gradient at the perturbed point plus the base optimizer's
decay evaluated at the restored weights ``w``.
"""

from __future__ import annotations

import torch


class SAM(torch.optim.Optimizer):
    def __init__(self, params, base_optimizer: type[torch.optim.Optimizer], rho=0.05, adaptive=False, **kwargs):
        if not isinstance(rho, int | float) or not rho >= 0:
            raise ValueError(f"SAM: rho must be a number >= 0, got {rho!r}")
        if not (isinstance(base_optimizer, type) and issubclass(base_optimizer, torch.optim.Optimizer)):
            raise TypeError(f"SAM: base_optimizer must be a torch.optim.Optimizer class, got {base_optimizer!r}")
        super().__init__(params, dict(rho=rho, adaptive=bool(adaptive), **kwargs))
        self.base_optimizer = base_optimizer(self.param_groups, **kwargs)
        self.param_groups = self.base_optimizer.param_groups  # one set of dicts: schedulers reach both
        self.defaults.update(self.base_optimizer.defaults)

    @torch.no_grad()
    def first_step(self, zero_grad: bool = False) -> None:
        grad_norm = self._grad_norm()
        for group in self.param_groups:
            scale = group["rho"] / (grad_norm + 1e-12)
            for p in group["params"]:
                if p.grad is None:
                    continue
                self.state[p]["old_p"] = p.detach().clone()
                e_w = (p * p if group["adaptive"] else 1.0) * p.grad * scale.to(p)
                p.add_(e_w)
        if zero_grad:
            self.zero_grad()

    @torch.no_grad()
    def second_step(self, zero_grad: bool = False) -> None:
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    p.copy_(self.state[p].pop("old_p"))
        self.base_optimizer.step()
        if zero_grad:
            self.zero_grad()

    @torch.no_grad()
    def step(self, closure=None) -> None:
        if closure is None:
            raise ValueError("SAM.step needs a closure that does a full forward-backward pass")
        if all(group["rho"] == 0 for group in self.param_groups):
            self.base_optimizer.step()  # e(w) = 0: the second pass would repeat the first
            return
        self.first_step(zero_grad=True)
        with torch.enable_grad():
            closure()
        self.second_step()

    def _grad_norm(self) -> torch.Tensor:
        device = self.param_groups[0]["params"][0].device
        norms = [
            ((p.abs() if group["adaptive"] else 1.0) * p.grad).norm(p=2).to(device)
            for group in self.param_groups
            for p in group["params"]
            if p.grad is not None
        ]
        if not norms:
            raise RuntimeError("SAM.first_step: no parameter has a gradient; run backward() first")
        return torch.norm(torch.stack(norms), p=2)

    def state_dict(self) -> dict:
        return self.base_optimizer.state_dict()

    def load_state_dict(self, state_dict: dict) -> None:
        self.base_optimizer.load_state_dict(state_dict)
        self.param_groups = self.base_optimizer.param_groups
        self.state.clear()  # only transient old_p lives here
