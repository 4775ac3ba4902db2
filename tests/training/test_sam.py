"""Sharpness-aware minimization (SAM, ASAM) through the project's loop, against plain torch steps
written from the papers' formulas; the seam (the loop hands every optimizer a closure) and what it
refuses."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from landscape.errors import LandscapeError
from landscape.quant import QuantConfig, quantize_
from landscape.training import SAM, Loop, LoopConfig, OptimizerConfig, make_optimizer


def net(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(10, 16), nn.BatchNorm1d(16), nn.Tanh(), nn.Linear(16, 3))


def data(n: int = 64, seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 10, generator=g), torch.randint(0, 3, (n,), generator=g)


def plain_sam_step(model: nn.Module, x, y, opt: torch.optim.Optimizer, rho: float, adaptive: bool,
                   eta: float = 0.01) -> None:
    """Foret et al.'s step (Kwon et al.'s with ``adaptive``), written out: the gradient at w, the
    climb to w + e, the gradient there with BatchNorm's running statistics left alone, back to w,
    the base step."""
    model.train()
    opt.zero_grad()
    F.cross_entropy(model(x), y).backward()
    named = [(n, p) for n, p in model.named_parameters()]
    if adaptive:  # T = |w| + eta for weights (BatchNorm's included), 1 for biases: ASAM's own code
        t = {n: (torch.ones_like(p) if n.endswith("bias") else p.detach().abs() + eta) for n, p in named}
        norm = torch.sqrt(sum(((t[n] * p.grad) ** 2).sum() for n, p in named))
        e = {n: rho * t[n] ** 2 * p.grad / norm for n, p in named}
    else:
        norm = torch.sqrt(sum((p.grad ** 2).sum() for _, p in named))
        e = {n: rho * p.grad / norm for n, p in named}
    w = {n: p.detach().clone() for n, p in named}
    stats = {n: b.clone() for n, b in model.named_buffers()}  # as the first pass left them
    with torch.no_grad():
        for n, p in named:
            p.add_(e[n])
    opt.zero_grad()
    F.cross_entropy(model(x), y).backward()
    with torch.no_grad():
        for n, p in named:
            p.copy_(w[n])
        for n, b in model.named_buffers():
            b.copy_(stats[n])  # statistics updated once per step: by the first pass
    opt.step()


def assert_close(a: nn.Module, b: nn.Module, tol: float = 1e-6) -> None:
    for (k, p), q in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
        assert torch.allclose(p.float(), q.float(), rtol=0, atol=tol), (k, (p.float() - q.float()).abs().max())


@pytest.mark.parametrize("adaptive, rho, base", [(False, 0.05, "sgd"), (True, 0.5, "sgd"), (False, 0.1, "adam")])
def test_a_full_batch_sam_step_equals_a_plain_torch_sam_step(adaptive, rho, base):
    x, y = data()
    ours, ref = net(), net()
    config = OptimizerConfig(base, lr=0.1, momentum=0.9, nesterov=True, weight_decay=5e-3, sam=rho,
                             sam_adaptive=adaptive)
    opt = make_optimizer(ours, config)
    assert isinstance(opt, SAM) and opt.adaptive == adaptive
    loop = Loop(ours, [(x, y)], opt, config=LoopConfig(epochs=2))  # one full batch: two steps
    loop.run()

    base_opt = (torch.optim.SGD(ref.parameters(), lr=0.1, momentum=0.9, nesterov=True, weight_decay=5e-3)
                if base == "sgd" else torch.optim.Adam(ref.parameters(), lr=0.1, weight_decay=5e-3))
    plain = net()
    plain_opt = torch.optim.SGD(plain.parameters(), lr=0.1, momentum=0.9, nesterov=True, weight_decay=5e-3)
    for _ in range(2):
        plain_sam_step(ref, x, y, base_opt, rho, adaptive)
        plain_opt.zero_grad()
        F.cross_entropy(plain(x), y).backward()
        plain_opt.step()
    assert_close(ours, ref)
    bn = ours[1]
    assert int(bn.num_batches_tracked) == 2  # once per step
    # and it is not a plain step: the gradient taken at w + e moved the weights elsewhere
    assert (ours[0].weight - plain[0].weight).abs().max() > 1e-4


def test_sam_state_is_the_base_optimizers_and_a_step_needs_a_closure():
    model = net()
    opt = make_optimizer(model, OptimizerConfig(sam=0.05))
    plain = make_optimizer(net(), OptimizerConfig())
    x, y = data()
    Loop(model, [(x, y)], opt, config=LoopConfig(epochs=1)).run()
    state = opt.state_dict()
    assert set(state) == {"state", "param_groups"} and "momentum_buffer" in state["state"][0]
    assert state["param_groups"] == plain.state_dict()["param_groups"]  # nothing SAM-specific is saved
    with pytest.raises(LandscapeError, match="needs a closure"):
        opt.step()
    again = make_optimizer(net(), OptimizerConfig(sam=0.05))
    again.load_state_dict(state)  # torch replaces the base's groups: a schedule's rate must still reach it
    again.param_groups[0]["lr"] = 0.001
    assert again.base.param_groups[0]["lr"] == 0.001


def test_the_loop_knows_no_sam_only_closures():
    """Any optimizer that evaluates the closure several times (torch's LBFGS) trains through the
    loop, with BatchNorm's statistics updated once per step; one that never calls it is refused."""
    x, y = data()
    model, ref = net(), net()
    Loop(model, [(x, y)], torch.optim.LBFGS(model.parameters(), lr=0.5, max_iter=4), config=LoopConfig(epochs=1)).run()
    opt = torch.optim.LBFGS(ref.parameters(), lr=0.5, max_iter=4)
    ref.train()
    first = []

    def closure():
        opt.zero_grad()
        if first:
            for m in ref.modules():
                if isinstance(m, nn.BatchNorm1d):
                    m.track_running_stats = False
        loss = F.cross_entropy(ref(x), y)
        for m in ref.modules():
            if isinstance(m, nn.BatchNorm1d):
                m.track_running_stats = True
        first.append(1)
        loss.backward()
        return loss

    opt.step(closure)
    assert len(first) > 1
    assert_close(model, ref)
    assert int(model[1].num_batches_tracked) == 1

    class Lazy(torch.optim.SGD):
        def step(self, closure=None):  # never evaluates the loss
            return None

    with pytest.raises(LandscapeError, match="never called the closure"):
        Loop(net(), [(x, y)], Lazy(net().parameters(), lr=0.1), config=LoopConfig(epochs=1)).run()


@pytest.mark.parametrize("method", ["bc", "sr"])
def test_sam_with_quantized_training_is_refused_in_the_loop(method):
    model = nn.Sequential(nn.Linear(10, 16), nn.Tanh(), nn.Linear(16, 3))
    hook = quantize_(model, QuantConfig(method=method))
    opt = make_optimizer(model, OptimizerConfig(sam=0.05))
    with pytest.raises(LandscapeError, match="one gradient per optimizer step.*SAM"):
        Loop(model, [data()], opt, hooks=[hook], config=LoopConfig(epochs=1)).run()


def test_bad_sam_settings_are_one_line_errors():
    for kw, match in [(dict(sam=0.0), "`sam` must be a positive radius"), (dict(sam=-0.1), "`sam` must be"),
                      (dict(sam=float("nan")), "`sam` must be"), (dict(sam_adaptive=True), "needs `sam`")]:
        with pytest.raises(LandscapeError, match=match) as info:
            OptimizerConfig(**kw)
        assert "\n" not in str(info.value)
