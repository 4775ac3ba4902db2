"""landscape.quant: the quantizers, the BC/R/SR update rules, checkpoints, resume and the CLI."""

from __future__ import annotations

import csv
import math
import os

import pytest
import torch
from torch import nn

from landscape.cli.train import main
from landscape.errors import LandscapeError
from landscape.io.checkpoint import load_state_dict
from landscape.jobs.train import TrainConfig, train
from landscape.models import build_model
from landscape.quant import (
    BinaryConnect,
    Levels,
    QuantConfig,
    Rounding,
    quantize_,
    quantized_layers,
    round_nearest,
    round_stochastic,
    scale_of,
)
from landscape.quant.quantizer import matched_scale


def small_net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 4, 3, bias=True), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(),
                         nn.Linear(4 * 6 * 6, 16), nn.ReLU(), nn.Linear(16, 3))


def on_grid(w: torch.Tensor, grid: Levels) -> bool:
    levels = grid.levels(w.dtype)
    return bool(torch.isclose(w.reshape(-1, 1), levels.reshape(1, -1), rtol=0, atol=1e-6 * grid.delta)
                .any(1).all())


# ------------------------------------------------------------------------------- quantizers


@pytest.mark.parametrize("bits", [1, 2, 3, 8])
def test_symmetric_grid(bits):
    g = Levels.symmetric(bits, 0.3)
    levels = g.levels()
    assert len(levels) == g.size == 2**bits
    assert torch.allclose(levels, -levels.flip(0))
    assert g.lo == pytest.approx(-0.3) and g.hi == pytest.approx(0.3)
    assert torch.allclose(levels.diff(), torch.full((2**bits - 1,), g.delta, dtype=levels.dtype))
    if bits == 1:
        assert levels.tolist() == pytest.approx([-0.3, 0.3])


@pytest.mark.parametrize("grid", [Levels.symmetric(1, 0.5), Levels.symmetric(3, 1.0), Levels(0.5, -6, 16, 0.0)])
def test_round_nearest_is_the_nearest_level(grid):
    w = torch.empty(5000, dtype=torch.float64).uniform_(grid.lo - 1.0, grid.hi + 1.0)
    levels = grid.levels()
    brute = levels[(w.reshape(-1, 1) - levels.reshape(1, -1)).abs().argmin(1)]
    assert torch.equal(round_nearest(w, grid), brute)
    if grid.size == 2:  # binary: scale * sign(w)
        assert torch.equal(round_nearest(w, grid), grid.hi * torch.where(w >= 0, 1.0, -1.0).double())


@pytest.mark.parametrize("grid", [Levels.symmetric(1, 1.0), Levels.symmetric(2, 0.7), Levels(0.5, -6, 16, 0.0)])
def test_round_stochastic_is_unbiased_and_lands_on_neighbouring_levels(grid):
    n = 40_000
    gen = torch.Generator().manual_seed(1)
    for w in torch.linspace(grid.lo, grid.hi, 13, dtype=torch.float64).tolist() + [grid.lo + 0.37 * grid.delta]:
        draws = round_stochastic(torch.full((n,), w, dtype=torch.float64), grid, gen)
        assert on_grid(draws, grid)
        below = grid.lo + math.floor((w - grid.lo) / grid.delta + 1e-9) * grid.delta
        assert bool(((draws - below).abs() < 1e-9).logical_or((draws - below - grid.delta).abs() < 1e-9).all())
        frac = min(max((w - below) / grid.delta, 0.0), 1.0)
        sd = grid.delta * math.sqrt(frac * (1 - frac) / n)  # the mean's standard deviation
        assert abs(draws.mean().item() - w) <= 5 * sd + 1e-9, (w, draws.mean().item(), sd)
    # binary with scale 1: +1 with probability clip((w + 1) / 2, 0, 1)
    if grid.size == 2 and grid.hi == 1.0:
        for w in (-2.0, -0.5, 0.0, 0.6, 3.0):
            p = min(max((w + 1) / 2, 0.0), 1.0)
            up = (round_stochastic(torch.full((n,), w), grid, gen) > 0).double().mean().item()
            assert abs(up - p) <= 5 * math.sqrt(p * (1 - p) / n) + 1e-12


def test_values_outside_the_range_are_clipped_onto_the_end_levels():
    g = Levels.symmetric(2, 1.0)
    w = torch.tensor([-5.0, 5.0])
    assert round_nearest(w, g).tolist() == [-1.0, 1.0]
    assert round_stochastic(w, g, torch.Generator().manual_seed(0)).tolist() == [-1.0, 1.0]


def test_scale_rules():
    w = torch.randn(64, 32, generator=torch.Generator().manual_seed(0))
    sd = w.double().std(unbiased=False).item()
    assert scale_of(w, "std", bits=1) == pytest.approx(sd)  # binary: +-std
    assert scale_of(w, "std", bits=2) == pytest.approx(sd * math.sqrt(9 / 5))
    assert scale_of(w, "he", bits=1) == pytest.approx(math.sqrt(2 / 32))  # fan-in 32
    conv = torch.empty(8, 4, 3, 3)
    assert scale_of(conv, "he", bits=1) == pytest.approx(math.sqrt(2 / 36))
    assert scale_of(w, "max") == pytest.approx(w.abs().max().item())
    assert scale_of(w, "mean") == pytest.approx(w.abs().mean().item(), rel=1e-6)
    assert scale_of(w, 1.0) == 1.0
    with pytest.raises(ValueError, match="all zero"):
        scale_of(torch.zeros(3, 3), "std")


@pytest.mark.parametrize("bits", [1, 2, 3, 8])
def test_matched_grids_have_the_reference_variance(bits):
    # the levels, used equally often, have the reference variance; for many bits R -> sqrt(3) std,
    # BinaryConnect's H for its uniform initialization
    R = matched_scale(0.7, bits)
    levels = Levels.symmetric(bits, R).levels()
    assert levels.pow(2).mean().sqrt().item() == pytest.approx(0.7)
    if bits == 8:
        assert R == pytest.approx(math.sqrt(3) * 0.7, rel=0.005)
    u = torch.empty(100_000, dtype=torch.float64).uniform_(-0.2, 0.2)
    assert scale_of(u, "std", bits=16) == pytest.approx(0.2, rel=0.01)


# ---------------------------------------------------------------------------- quantize_


@pytest.mark.parametrize("method", ["bc", "sr", "r"])
@pytest.mark.parametrize("bits", [1, 2])
def test_quantize_keeps_keys_and_quantizes_only_conv_and_linear_weights(method, bits):
    model = small_net()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    hook = quantize_(model, QuantConfig(method=method, bits=bits))
    assert isinstance(hook, BinaryConnect if method == "bc" else Rounding)
    after = model.state_dict()
    assert list(after) == list(before)
    assert hook.names == ["0.weight", "4.weight", "6.weight"]
    for k, v in after.items():
        if k in hook.names:
            grid = hook.grids[hook.names.index(k)]
            assert on_grid(v, grid) and v.unique().numel() <= 2**bits
            assert grid.hi == pytest.approx(scale_of(before[k], "he", bits))
        else:  # biases and BatchNorm: untouched
            assert torch.equal(v, before[k]), k


def test_keep_first_and_last_layers_in_full_precision():
    names = [n for n, _ in quantized_layers(small_net(), "first,last")]
    assert names == ["4.weight"]
    assert QuantConfig(keep="last,first").keep == "first,last"
    model = small_net()
    first = model[0].weight.clone()
    hook = quantize_(model, QuantConfig(keep="first"))
    assert hook.names == ["4.weight", "6.weight"] and torch.equal(model[0].weight, first)


def test_bad_quant_configs_are_user_errors():
    # the object names its own fields; landscape-train's config names the flags
    for kw, match, flag in [(dict(method="xyz"), "`method`", "`quant`"), (dict(bits=0), "`bits`", "`bits`"),
                            (dict(bits=9), "`bits`", "`bits`"), (dict(scale="foo"), "`scale`", "`quant_scale`"),
                            (dict(scale="-1"), "`scale`", "`quant_scale`"),
                            (dict(keep="middle"), "`keep`", "`quant_keep`"),
                            (dict(step="half"), "`step`", "`quant_step`")]:
        with pytest.raises(LandscapeError, match=match):
            QuantConfig(**kw)
        flags = {"method": "quant", "scale": "quant_scale", "keep": "quant_keep", "step": "quant_step"}
        with pytest.raises(LandscapeError, match=flag):
            TrainConfig.from_args(**{"quant": "bc", **{flags.get(k, k): v for k, v in kw.items()}})
    assert QuantConfig(scale="0.5").scale == 0.5


# ------------------------------------------------------------------------- update rules


def _loss(model, gen):
    x = torch.randn(16, 1, 8, 8, generator=gen)
    y = torch.randint(0, 3, (16,), generator=gen)
    return nn.functional.cross_entropy(model(x), y)


def _steps(model, hook, opt, n, seed=0):
    gen = torch.Generator().manual_seed(seed)
    for _ in range(n):
        opt.zero_grad(set_to_none=True)
        _loss(model, gen).backward()
        hook.after_backward(None)
        opt.step()
        hook.after_step(None)


@pytest.mark.parametrize("opt_name", ["sgd", "adam"])
def test_bc_float_weights_move_while_quantized_weights_stay_on_the_grid(opt_name):
    model = small_net()
    hook = quantize_(model, QuantConfig("bc", bits=1))
    real0 = [w.clone() for w in hook.real]
    opt = (torch.optim.SGD(model.parameters(), lr=0.5, momentum=0.9) if opt_name == "sgd"
           else torch.optim.Adam(model.parameters(), lr=0.02))
    _steps(model, hook, opt, 30)
    for p, w, w0, g in zip(hook.params, hook.real, real0, hook.grids, strict=True):
        assert on_grid(p, g) and p.unique().numel() <= 2
        assert not torch.equal(w, w0)  # the full-precision weights moved
        assert not on_grid(w, g)  # ... and are not quantized
        assert float(w.abs().max()) <= g.hi * (1 + 1e-6)  # clipped to the grid's range
        assert torch.equal(p, round_nearest(w, g))  # the network runs with Q_d(w_r)
    assert 0 < hook.changed() < 1
    # optimizer state stays full precision
    state = next(iter(opt.state.values()))
    buf = state.get("momentum_buffer", state.get("exp_avg"))
    assert buf.unique().numel() > 2


def test_bc_gradient_is_taken_at_the_quantized_weights_and_steps_in_units_of_the_scale():
    model = small_net()
    hook = quantize_(model, QuantConfig("bc", bits=1))
    gen = torch.Generator().manual_seed(0)
    # the gradient at Q(w_r): the same as the gradient of a plain copy holding the quantized weights
    twin = small_net()
    twin.load_state_dict(model.state_dict())
    _loss(model, gen).backward()
    _loss(twin, torch.Generator().manual_seed(0)).backward()
    hook.after_backward(None)
    real0 = [w.clone() for w in hook.real]
    for p, q, r in zip(hook.params, [twin[0].weight, twin[4].weight, twin[6].weight], hook.scales, strict=True):
        assert torch.allclose(p.grad, q.grad * r)  # unit steps: the gradient of w / R
    lr = 1e-3
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    opt.step()
    hook.after_step(None)
    for w, w0, q, r in zip(hook.real, real0, [twin[0].weight, twin[4].weight, twin[6].weight], hook.scales,
                           strict=True):
        inside = (w0 - lr * r * r * q.grad).abs() < r * (1 - 1e-4)
        assert torch.allclose(w[inside], (w0 - lr * r * r * q.grad)[inside], atol=1e-7)


@pytest.mark.parametrize("step", ["unit", "raw"])
def test_rounding_with_steps_below_half_the_spacing_never_changes_a_weight(step):
    model = small_net()
    hook = quantize_(model, QuantConfig("r", bits=2, step=step))
    start = [p.clone() for p in hook.params]
    # a constant push of 0.49 spacings, always in the same direction, 50 times
    opt = torch.optim.SGD(model.parameters(), lr=1.0)
    for k in range(50):
        opt.zero_grad()
        for p, d, u in zip(hook.params, hook.opt_delta, hook.unit, strict=True):
            p.grad = torch.full_like(p, (-1) ** (k // 25) * 0.49 * d / u)
        hook.after_backward(None)
        opt.step()
        hook.after_step(None)
    assert all(torch.equal(p, s) for p, s in zip(hook.params, start, strict=True))
    # Adam's steps are about lr (here a quarter of the smallest spacing)
    opt = torch.optim.Adam(model.parameters(), lr=0.25 * min(hook.opt_delta))
    _steps(model, hook, opt, 60)
    assert all(torch.equal(p, s) for p, s in zip(hook.params, start, strict=True))
    assert hook.changed() == 0.0
    # with steps of a few spacings, rounding does move weights
    opt = torch.optim.Adam(model.parameters(), lr=3 * max(hook.opt_delta))
    _steps(model, hook, opt, 5)
    assert hook.changed() > 0


@pytest.mark.parametrize("step", ["unit", "raw"])
def test_stochastic_rounding_moves_weights_with_tiny_steps_at_the_right_rate(step):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(100, 100, bias=False))
    hook = quantize_(model, QuantConfig("sr", bits=1, step=step))
    p = hook.params[0]
    up = p.detach() > 0
    eps = 1e-3  # the step as a share of the spacing
    opt = torch.optim.SGD(model.parameters(), lr=1.0)
    n = 500
    for _ in range(n):
        opt.zero_grad()
        p.grad = torch.full_like(p, eps * hook.opt_delta[0])  # every weight pushed down by eps spacings
        if step == "unit":
            p.grad /= hook.unit[0]  # after_backward multiplies by the unit
        hook.after_backward(None)
        opt.step()
        hook.after_step(None)
    # a weight at +R flips with probability eps per step and then stays at -R
    flipped = (p.detach() < 0)[up].double().mean().item()
    expected = 1 - (1 - eps) ** n
    k = int(up.sum())
    assert abs(flipped - expected) < 5 * math.sqrt(expected * (1 - expected) / k)
    assert bool((p.detach() < 0)[~up].all())  # those at -R were pushed against the end: they stay


def test_rounding_with_unit_steps_rounds_in_units_of_the_scale():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(50, 40, bias=False))
    hook = quantize_(model, QuantConfig("r", bits=3))
    p = hook.params[0]
    before = hook.codes()[0].clone()
    opt = torch.optim.SGD(model.parameters(), lr=1.0)
    opt.zero_grad()
    # a step of exactly 1.2 spacings down, expressed as a gradient in the network's units
    p.grad = torch.full_like(p, 1.2 * hook.opt_delta[0] / hook.unit[0])
    hook.after_backward(None)
    opt.step()
    hook.after_step(None)
    assert torch.equal(hook.codes()[0], (before - 1).clamp(min=hook.low))


# --------------------------------------------------------------------------- training runs


def quick(tmp_path, name="run", **kw) -> TrainConfig:
    base = dict(arch="mlp_bn", dataset="digits", epochs=3, lr=0.01, optimizer="adam", batch_size=64,
                weight_decay=0.0, save_every=2, out=str(tmp_path / name), progress=False, subset=400)
    base.update(kw)
    return TrainConfig.from_args(**base)


@pytest.mark.parametrize("method,bits", [("bc", 1), ("sr", 2), ("r", 1)])
def test_checkpoints_hold_quantized_weights_and_record_the_quantization(tmp_path, method, bits):
    result = train(quick(tmp_path, quant=method, bits=bits))
    out = tmp_path / "run"
    plain = build_model("mlp_bn", in_channels=1).state_dict()
    for name in ("model_0.pt", "model_2.pt", "model_3.pt"):
        ckpt = torch.load(out / name, weights_only=True)
        q = ckpt["quant"]
        assert q["method"] == method and q["bits"] == bits and q["levels"] == 2**bits
        assert q["layers"] == ["net.1.weight", "net.4.weight", "net.7.weight"]
        assert list(ckpt["state_dict"]) == list(plain)  # the keys do not change
        for layer in q["layers"]:
            w = ckpt["state_dict"][layer]
            assert w.unique().numel() <= 2**bits
            grid = Levels.symmetric(bits, q["scale"][layer])
            assert grid.delta == pytest.approx(q["spacing"][layer]) and on_grid(w, grid)
            if method == "bc":
                fp = ckpt["full_precision"][layer]
                assert torch.equal(round_nearest(fp, grid), w)
                assert float(fp.abs().max()) <= grid.hi * (1 + 1e-6)
            else:
                assert "full_precision" not in ckpt
        assert ckpt["args"]["quant"] == method and ckpt["args"]["bits"] == bits
    # every command loads it as it is: a plain mlp_bn takes the state dict
    model = build_model("mlp_bn", in_channels=1)
    model.load_state_dict(load_state_dict(out / "model_3.pt"))
    assert torch.equal(model.net[1].weight, result.model.net[1].weight)
    with open(out / "log.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert float(rows[0]["quant_changed"]) == 0.0
    assert 0.0 <= float(rows[-1]["quant_changed"]) <= 1.0
    if method != "r":
        assert float(rows[-1]["quant_changed"]) > 0.0
    assert ckpt["quant"]["changed"] == pytest.approx(float(rows[-1]["quant_changed"]))


class Stop(KeyboardInterrupt):
    pass


@pytest.mark.parametrize("method", ["sr", "bc"])
def test_resumed_quantized_run_equals_uninterrupted_run(tmp_path, method):
    kw = dict(quant=method, epochs=5, save_every=2, milestones=[3])
    train(quick(tmp_path, "full", **kw))

    def interrupt(epoch, row):
        if epoch == 3:
            raise Stop

    with pytest.raises(Stop):
        train(quick(tmp_path, "cut", **kw), on_epoch_end=interrupt)
    assert os.path.isfile(tmp_path / "cut" / "resume.pt")
    train(quick(tmp_path, "cut", resume=True, **kw))
    a = torch.load(tmp_path / "full" / "model_5.pt", weights_only=True)
    b = torch.load(tmp_path / "cut" / "model_5.pt", weights_only=True)
    for k, v in a["state_dict"].items():
        assert torch.equal(v, b["state_dict"][k]), k
    if method == "bc":
        for k, v in a["full_precision"].items():
            assert torch.equal(v, b["full_precision"][k]), k
    else:  # the random stream continued where it stopped
        assert torch.equal(a["hooks"]["0:quant"]["generator"], b["hooks"]["0:quant"]["generator"])
    assert a["quant"] == b["quant"]
    with pytest.raises(LandscapeError, match="different settings: quant"):
        train(quick(tmp_path, "cut", resume=True, **{**kw, "quant": "r", "epochs": 6}))


def test_hook_factory_equals_config_and_full_precision_is_stored_once(tmp_path):
    a = train(quick(tmp_path, "cfg", quant="sr", epochs=2))
    b = train(quick(tmp_path, "hook", epochs=2), hooks=[lambda m: quantize_(m, QuantConfig("sr", seed=0))])
    for k, v in a.model.state_dict().items():
        assert torch.equal(v, b.model.state_dict()[k]), k
    # BC: the full-precision weights are in the file once (shared with the hook's state)
    train(quick(tmp_path, "bc", quant="bc", epochs=1, save_every=1))
    train(quick(tmp_path, "fp", epochs=1, save_every=1))
    size_bc = os.path.getsize(tmp_path / "bc" / "model_1.pt")
    size_fp = os.path.getsize(tmp_path / "fp" / "model_1.pt")
    net = build_model("mlp_bn", in_channels=1)
    n_weights = sum(p.numel() for n, p in net.named_parameters() if n.endswith("weight") and p.ndim == 2)
    assert size_bc - size_fp < 2.5 * 4 * n_weights  # one float copy (+ int8 codes), not two


def test_big_batch_multiplies_the_batch_and_says_so(tmp_path):
    train(quick(tmp_path, quant="sr", big_batch=4, epochs=1, save_every=1, batch_size=50))
    ckpt = torch.load(tmp_path / "run" / "model_1.pt", weights_only=True)
    assert ckpt["args"]["big_batch"] == 4 and ckpt["args"]["batch_size"] == 50
    assert ckpt["args"]["effective_batch_size"] == 200
    assert ckpt["step"] == math.ceil(400 / 200)  # 400 training samples (subset)
    with pytest.raises(LandscapeError, match="`big_batch`"):
        train(quick(tmp_path, "bad", big_batch=0))
    with pytest.raises(LandscapeError, match="`bits` needs `quant`"):
        train(quick(tmp_path, "bad", bits=2))


# ------------------------------------------------------------------------------------ CLI


def test_cli_trains_bc_and_big_batch_sr(tmp_path, capsys):
    base = ["--arch", "mlp_bn", "--dataset", "digits", "--optimizer", "adam", "--lr", "0.01", "--epochs", "1",
            "--subset", "200", "--no-progress"]
    assert main(base + ["--quant", "bc", "--bits", "1", "--out", str(tmp_path / "bc")]) == 0
    assert main(base + ["--quant", "sr", "--bits", "1", "--big-batch", "4", "--quant-keep", "first,last",
                        "--out", str(tmp_path / "sr")]) == 0
    ckpt = torch.load(tmp_path / "sr" / "model_1.pt", weights_only=True)
    assert ckpt["quant"]["layers"] == ["net.4.weight"] and ckpt["args"]["effective_batch_size"] == 512
    assert "test accuracy" in capsys.readouterr().out


@pytest.mark.slow
def test_cli_issue_commands_on_a_cifar_folder(tmp_path):
    from helpers import make_cifar10

    make_cifar10(tmp_path / "data", n_per_batch=4)
    base = ["--arch", "vgg9", "--dataset", "cifar10", "--data-root", str(tmp_path / "data"), "--optimizer",
            "adam", "--lr", "0.01", "--epochs", "1", "--batch-size", "4", "--no-progress"]
    assert main(base + ["--quant", "bc", "--bits", "1", "--out", str(tmp_path / "vgg9_bc")]) == 0
    assert main(base + ["--quant", "sr", "--bits", "1", "--big-batch", "4", "--out", str(tmp_path / "vgg9_sr")]) == 0
    bc = torch.load(tmp_path / "vgg9_bc" / "model_1.pt", weights_only=True)
    sr = torch.load(tmp_path / "vgg9_sr" / "model_1.pt", weights_only=True)
    assert len(bc["quant"]["layers"]) == 9 and set(bc["full_precision"]) == set(bc["quant"]["layers"])
    assert sr["step"] == 2 and sr["args"]["effective_batch_size"] == 16  # 20 images in batches of 16
    for ckpt in (bc, sr):
        for layer in ckpt["quant"]["layers"]:
            assert ckpt["state_dict"][layer].unique().numel() <= 2


@pytest.mark.parametrize("args,message", [
    (["--bits", "0", "--quant", "bc"], "--bits"),
    (["--quant", "xyz"], "--quant"),
    (["--quant", "sr", "--bits", "9"], "--bits"),
    (["--quant", "sr", "--big-batch", "0"], "--big-batch"),
    (["--quant", "bc", "--quant-scale", "foo"], "--quant-scale"),
    (["--bits", "2"], "--bits needs --quant"),
])
def test_cli_bad_quant_values_are_one_line_and_exit_2(tmp_path, capsys, args, message):
    code = main(["--arch", "mlp_bn", "--dataset", "digits", "--out", str(tmp_path / "x"), *args])
    err = capsys.readouterr().err
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1
    assert not os.path.exists(tmp_path / "x" / "model_0.pt")
