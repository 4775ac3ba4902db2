"""Knowledge distillation's objective through the project's loop, against the loss written out in
plain torch (Hinton et al.'s formula), and its settings."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from landscape.errors import LandscapeError
from landscape.training import Distillation, Loop, LoopConfig


def net(seed: int, width: int = 16) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(10, width), nn.BatchNorm1d(width), nn.ReLU(), nn.Linear(width, 4))


def test_a_distillation_step_equals_that_losss_step_in_plain_torch():
    g = torch.Generator().manual_seed(3)
    x, y = torch.randn(48, 10, generator=g), torch.randint(0, 4, (48,), generator=g)
    teacher = net(7, width=32)
    teacher.train()  # the loss puts it in eval mode itself
    teacher_state = {k: v.clone() for k, v in teacher.state_dict().items()}
    T, alpha = 3.0, 0.7
    ours, ref = net(0), net(0)
    opt = torch.optim.SGD(ours.parameters(), lr=0.2, momentum=0.9)
    Loop(ours, [(x, y)], opt, objective=Distillation(T, alpha).loss(teacher), config=LoopConfig(epochs=1)).run()

    ref_opt = torch.optim.SGD(ref.parameters(), lr=0.2, momentum=0.9)
    ref.train()
    ref_opt.zero_grad()
    s = ref(x)
    with torch.no_grad():
        t = teacher(x)  # eval mode: running statistics
    p_t = torch.softmax(t / T, 1)
    kl = (p_t * (torch.log(p_t) - torch.log_softmax(s / T, 1))).sum(1).mean()
    ce = -torch.log_softmax(s, 1)[torch.arange(len(y)), y].mean()
    (alpha * T * T * kl + (1 - alpha) * ce).backward()
    ref_opt.step()
    for (k, a), b in zip(ours.state_dict().items(), ref.state_dict().values(), strict=True):
        assert torch.allclose(a.float(), b.float(), rtol=0, atol=1e-6), k
    for k, v in teacher.state_dict().items():  # the teacher is not trained, its statistics not updated
        assert torch.equal(v, teacher_state[k]), k
    assert not teacher.training and all(p.grad is None and not p.requires_grad for p in teacher.parameters())

    # alpha 0 is the plain cross-entropy step
    plain, kd0 = net(0), net(0)
    Loop(plain, [(x, y)], torch.optim.SGD(plain.parameters(), lr=0.2), config=LoopConfig(epochs=1)).run()
    Loop(kd0, [(x, y)], torch.optim.SGD(kd0.parameters(), lr=0.2), objective=Distillation(T, 0.0).loss(teacher),
         config=LoopConfig(epochs=1)).run()
    for a, b in zip(plain.parameters(), kd0.parameters(), strict=True):
        assert torch.allclose(a, b, rtol=0, atol=1e-7)


def test_the_log_scores_with_the_loss_and_trains_with_the_objective():
    g = torch.Generator().manual_seed(4)
    x, y = torch.randn(32, 10, generator=g), torch.randint(0, 4, (32,), generator=g)
    model = net(1)
    history = Loop(model, [(x, y)], torch.optim.SGD(model.parameters(), lr=0.0),
                   objective=Distillation(2.0, 1.0).loss(net(2)), test_data=[(x, y)],
                   config=LoopConfig(epochs=1)).run()
    model.eval()
    with torch.no_grad():
        ce = F.cross_entropy(model(x), y).item()
    assert history[1]["test_loss"] == pytest.approx(ce, rel=1e-6)  # evaluations: cross-entropy
    assert history[1]["train_loss"] != pytest.approx(history[1]["test_loss"], rel=1e-3)  # trained: the objective


@pytest.mark.parametrize("kw, match", [(dict(temperature=0), "`temperature` must be a positive number"),
                                       (dict(temperature=float("inf")), "`temperature`"),
                                       (dict(alpha=1.5), r"`alpha` must be in \[0, 1\]"),
                                       (dict(alpha=-0.1), "`alpha`")])
def test_bad_distillation_settings_are_one_line_errors(kw, match):
    with pytest.raises(LandscapeError, match=match) as info:
        Distillation(**kw)
    assert "\n" not in str(info.value)
