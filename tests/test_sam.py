"""SAM against updates computed by hand on a quadratic loss, in float64."""

import io

import pytest
import torch

from genboost.train.sam import SAM

A = torch.tensor([[2.0, 0.5, 0.0], [0.5, 1.0, -0.3], [0.0, -0.3, 3.0]], dtype=torch.float64)
B = torch.tensor([[1.5, 0.2], [0.2, 0.7]], dtype=torch.float64)
W0 = torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64)
V0 = torch.tensor([-0.7, 1.3], dtype=torch.float64)
LR, LR_V, MOMENTUM, WD, RHO = 0.1, 0.05, 0.9, 0.01, 0.2


def loss_fn(w, v):
    """f(w, v) = 0.5 w^T A w + 0.5 v^T B v: its gradient is (A w, B v)."""
    return 0.5 * w @ A @ w + 0.5 * v @ B @ v


def make(rho=RHO, adaptive=False):
    w = W0.clone().requires_grad_()
    v = V0.clone().requires_grad_()
    groups = [{"params": [w]}, {"params": [v], "lr": LR_V}]  # two groups: the norm must span both
    opt = SAM(groups, torch.optim.SGD, rho=rho, adaptive=adaptive, lr=LR, momentum=MOMENTUM, weight_decay=WD)
    calls = []

    def closure():
        calls.append(1)
        loss = loss_fn(w, v)
        loss.backward()
        return loss

    return w, v, opt, closure, calls


def sam_step(opt, closure):
    opt.zero_grad()
    closure()
    opt.step(closure)


def expected_updates(n_steps, adaptive):
    """SGD(momentum, L2 decay) on the gradient at w + e(w), by hand."""
    w, v = W0.clone(), V0.clone()
    buf_w = buf_v = None
    for _ in range(n_steps):
        gw, gv = A @ w, B @ v
        if adaptive:
            norm = torch.sqrt(((w.abs() * gw) ** 2).sum() + ((v.abs() * gv) ** 2).sum())
            ew, ev = w**2 * gw * RHO / (norm + 1e-12), v**2 * gv * RHO / (norm + 1e-12)
        else:
            norm = torch.sqrt((gw**2).sum() + (gv**2).sum())
            ew, ev = RHO * gw / (norm + 1e-12), RHO * gv / (norm + 1e-12)
        # Descent: gradient at the perturbed point, decay at the restored weights.
        dw = A @ (w + ew) + WD * w
        dv = B @ (v + ev) + WD * v
        buf_w = dw if buf_w is None else MOMENTUM * buf_w + dw
        buf_v = dv if buf_v is None else MOMENTUM * buf_v + dv
        w, v = w - LR * buf_w, v - LR_V * buf_v
    return w, v


@pytest.mark.parametrize("adaptive", [False, True])
def test_steps_match_hand_computed_updates(adaptive):
    w, v, opt, closure, calls = make(adaptive=adaptive)
    for _ in range(3):
        sam_step(opt, closure)
    ew, ev = expected_updates(3, adaptive)
    torch.testing.assert_close(w.detach(), ew, rtol=1e-13, atol=1e-13)
    torch.testing.assert_close(v.detach(), ev, rtol=1e-13, atol=1e-13)
    assert len(calls) == 6  # one gradient at w, one at w + e(w), per step


def test_adaptive_differs_from_plain():
    w_plain, *_ = expected_updates(1, adaptive=False)
    w_adapt, *_ = expected_updates(1, adaptive=True)
    assert not torch.allclose(w_plain, w_adapt)


def test_first_and_second_step_restore_weights():
    w, v, opt, closure, _ = make()
    closure()
    opt.first_step(zero_grad=True)
    assert w.grad is None
    assert not torch.equal(w.detach(), W0)
    closure()
    opt.second_step()
    # Restored to W0 before the base step, so the update is exactly -lr * (grad at perturbed point + wd * W0).
    ew, _ = expected_updates(1, adaptive=False)
    torch.testing.assert_close(w.detach(), ew, rtol=1e-13, atol=1e-13)


def test_rho_zero_takes_only_the_base_step():
    w, v, opt, closure, calls = make(rho=0.0)
    w_ref = W0.clone().requires_grad_()
    v_ref = V0.clone().requires_grad_()
    groups = [{"params": [w_ref]}, {"params": [v_ref], "lr": LR_V}]
    plain = torch.optim.SGD(groups, lr=LR, momentum=MOMENTUM, weight_decay=WD)
    for _ in range(3):
        opt.zero_grad()
        closure()
        opt.step(closure)
        plain.zero_grad()
        loss_fn(w_ref, v_ref).backward()
        plain.step()
    assert len(calls) == 3  # only the caller's own passes: step never ran the closure
    assert torch.equal(w.detach(), w_ref.detach()) and torch.equal(v.detach(), v_ref.detach())


def test_scheduler_drives_the_shared_lr():
    w, v, opt, closure, _ = make()
    sched = torch.optim.lr_scheduler.StepLR(opt.base_optimizer, step_size=1, gamma=0.5)
    sam_step(opt, closure)
    sched.step()
    assert opt.param_groups[0]["lr"] == pytest.approx(LR * 0.5)
    assert opt.base_optimizer.param_groups is opt.param_groups
    before = w.detach().clone()
    buf = opt.base_optimizer.state[w]["momentum_buffer"].clone()
    sam_step(opt, closure)
    # The base step used the halved lr: w_new = w - lr/2 * (momentum * buf + d) for some d we recover from buf.
    new_buf = opt.base_optimizer.state[w]["momentum_buffer"]
    torch.testing.assert_close(w.detach(), before - LR * 0.5 * new_buf, rtol=1e-13, atol=1e-13)
    assert not torch.equal(new_buf, buf)


def test_state_dict_round_trip():
    w, v, opt, closure, _ = make()
    for _ in range(2):
        sam_step(opt, closure)
    opt.param_groups[0]["lr"] = 0.03
    buffer = io.BytesIO()  # through bytes, as a checkpoint would: state_dict() shares the live tensors
    torch.save(opt.state_dict(), buffer)
    buffer.seek(0)
    saved = torch.load(buffer)

    w2 = w.detach().clone().requires_grad_()
    v2 = v.detach().clone().requires_grad_()
    opt2 = SAM([{"params": [w2]}, {"params": [v2]}], torch.optim.SGD, rho=0.7, lr=1.0, momentum=MOMENTUM)
    opt2.load_state_dict(saved)
    assert opt2.param_groups is opt2.base_optimizer.param_groups
    assert opt2.param_groups[0]["rho"] == RHO and opt2.param_groups[0]["lr"] == 0.03
    assert opt2.param_groups[1]["weight_decay"] == WD

    def closure2():
        loss = loss_fn(w2, v2)
        loss.backward()
        return loss

    sam_step(opt, closure)
    sam_step(opt2, closure2)
    assert torch.equal(w.detach(), w2.detach()) and torch.equal(v.detach(), v2.detach())


@pytest.mark.parametrize("rho", [-0.1, float("nan"), "0.1"])
def test_bad_rho_is_refused(rho):
    with pytest.raises(ValueError, match="rho"):
        SAM([torch.zeros(2, requires_grad=True)], torch.optim.SGD, rho=rho, lr=0.1)


def test_base_optimizer_must_be_a_class():
    p = torch.zeros(2, requires_grad=True)
    with pytest.raises(TypeError, match="base_optimizer"):
        SAM([p], torch.optim.SGD([p], lr=0.1), lr=0.1)


def test_step_needs_a_closure():
    w, v, opt, closure, _ = make()
    closure()
    with pytest.raises(ValueError, match="closure"):
        opt.step()
