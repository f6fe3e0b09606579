"""What the trainers share (genboost.train.model): the lr schedule, bit for bit as torch's scheduler."""

import pytest
import torch

from genboost.train.model import lr_schedule


@pytest.mark.parametrize(
    "lr,epochs,t_max",
    [(3e-5, 200, 100), (2e-2, 100, 100), (1e-3, 450, 100), (0.1, 30, 7), (1e-4, 6, 1), (0.3, 1, 50)],
)
def test_lr_schedule_equals_torch_cosine_annealing_bit_for_bit(lr, epochs, t_max):
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=t_max)
    want = []
    for _ in range(epochs):
        want.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lr_schedule(lr, epochs, t_max) == tuple(want)  # ==, not approx: the engine must see these numbers


def test_training_does_not_import_torch_dynamo(fresh_process_imports):
    """A training process stays off torch._dynamo (1-2 s of import in each of the study's jobs)."""
    assert fresh_process_imports["torch._dynamo"] is False


def test_accuracy_rounds_into_the_label_range_or_is_left_out_for_a_numeric_label():
    from genboost.train.model import prediction_metrics

    y = torch.tensor([0.0, 2.0, 4.0, 1.0])
    pred = torch.tensor([-0.7, 2.4, 9.0, 1.6])  # clamped to 0, rounded to 2, clamped to 4 with 5 classes, 2
    assert prediction_metrics(pred, y, classes=5) == (pytest.approx(((0.7**2) + 0.16 + 25 + 0.36) / 4), 0.75)
    assert prediction_metrics(pred, y, classes=7)[1] == 0.5  # 9 clamps to 6, not 4
    assert prediction_metrics(pred, y, classes=None)[1] is None
