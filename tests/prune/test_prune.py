"""Filter pruning: counts, physical removal against zeroed channels, strategies, plans, presets."""

from __future__ import annotations

import math
from fractions import Fraction

import pytest
import torch
import torch.nn.functional as F
from helpers import RESNET_PLAN, cifar_resnet_counts, randomized
from torch import nn

from landscape.errors import LandscapeError
from landscape.models import build_model
from landscape.prune import (
    PRESETS,
    channel_graph,
    count,
    layer_counts,
    parse_plan,
    plan_widths,
    preset,
    prune_filters,
    reference_model,
    resize_,
    select,
    table1,
)

# ----------------------------------------------------------------------------- helpers


def l1(conv: nn.Module, inputs: torch.Tensor | None = None) -> torch.Tensor:
    w = conv.weight.detach().double()
    if inputs is not None:
        w = w[:, inputs]
    return w.abs().sum(dim=(1, 2, 3))


def largest(scores: torch.Tensor, k: int) -> torch.Tensor:
    return torch.tensor(sorted(sorted(range(len(scores)), key=lambda i: -float(scores[i]))[:k]))


def floor_kept(n: int, p: float) -> int:
    return math.floor(Fraction(n) * (1 - Fraction(str(p))))


def zeroed_output(model: nn.Module, x: torch.Tensor, after: dict[str, torch.Tensor]) -> torch.Tensor:
    """The model's output with every channel not in ``after[module]`` zeroed at that module's output."""
    mods = dict(model.named_modules())
    handles = []
    for name, keep in after.items():
        def hook(m, inp, out, keep=keep):
            mask = torch.zeros(out.shape[1], dtype=out.dtype)
            mask[keep] = 1
            return out * mask.view(1, -1, *([1] * (out.dim() - 2)))
        handles.append(mods[name].register_forward_hook(hook))
    try:
        with torch.no_grad():
            return model(x)
    finally:
        for h in handles:
            h.remove()


# ------------------------------------------------------------------------------ counting


class Small(nn.Module):
    """conv3x3(3->4, pad 1) BN ReLU maxpool2, conv3x3(4->6, no pad), a 1x1 'shortcut', linear."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 4, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(4)
        self.conv2 = nn.Conv2d(4, 6, 3)
        self.shortcut = nn.Conv2d(4, 6, 1, stride=2, bias=False)
        self.fc = nn.Linear(6 * 2 * 2, 5)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.bn1(self.conv1(x))), 2)  # 4 x 4 x 4
        y = self.conv2(x)  # 6 x 2 x 2
        return self.fc((y + self.shortcut(x)).flatten(1))


class Untraceable(nn.Module):
    """fx cannot trace it (control flow on a shape): counted by hooks on the meta device."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, stride=2, bias=False)

    def forward(self, x):
        if x.shape[-1] > 100:
            raise ValueError("too large")
        return self.conv(x)  # (only a conv: PyTorch's first meta linear imports its decompositions, ~3 s)


def test_count_hand_computed_small_network():
    # conv1: 4 maps of 8x8, each 3*3*3 MACs; conv2: 6 maps of 2x2, each 4*3*3; fc 24 -> 5.
    flops = 4 * 8 * 8 * 27 + 6 * 2 * 2 * 36 + 24 * 5
    params = 4 * 27 + 6 * 36 + 24 * 5  # no biases, no BatchNorm
    assert count(Small(), (3, 8, 8)) == (flops, params)
    # the 1x1 stride-2 projection: 6 maps of 2x2, 4 MACs each, and its 24 weights
    assert count(Small(), (3, 8, 8), shortcuts=True) == (flops + 6 * 2 * 2 * 4, params + 24)
    # 4 maps of 3x3 from a 7x7 input at stride 2, 27 MACs each
    assert count(Untraceable(), (3, 7, 7)) == (4 * 9 * 27, 4 * 27)
    assert [c.name for c in layer_counts(Small(), (3, 8, 8))] == ["conv1", "conv2", "fc"]
    assert layer_counts(Small(), (3, 8, 8))[1].output_shape == (6, 2, 2)


def test_count_touches_no_real_tensor():
    model = build_model("resnet20")
    before = {k: v.clone() for k, v in model.state_dict().items()}
    count(model, (3, 32, 32))
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert all(p.device.type == "cpu" for p in model.parameters())


def test_count_bad_shape_is_an_error():
    with pytest.raises(LandscapeError, match="input shape"):
        count(Small(), (3, 0, 8))
    with pytest.raises(LandscapeError, match="cannot run"):
        count(Small(), (5, 8, 8))  # 5 input channels for a 3-channel conv
    with pytest.raises(LandscapeError, match="cannot run"):
        count(Small(), (3, 16, 16))  # the linear layer expects 4x4 maps


def vgg16_counts(widths: dict[int, int]) -> tuple[int, int]:
    """Closed form for the CIFAR VGG-16; ``widths`` by conv number (1..13)."""
    cfg = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"]
    flops = params = 0
    cin, side, i = 3, 32, 0
    for v in cfg:
        if v == "M":
            side //= 2
            continue
        i += 1
        w = widths.get(i, v)
        params += 9 * cin * w
        flops += 9 * cin * w * side * side
        cin = w
    head = cin * 512 + 512 * 10
    return flops + head, params + head


def resnet34_counts(conv1_widths: dict[tuple[int, int], int],
                    residual: dict[int, int] | None = None) -> tuple[int, int]:
    """Closed form for ResNet-34 on 224x224, 1000 classes; ``residual[stage]``: the stage's residual width."""
    residual = residual or {}
    params = 7 * 7 * 3 * 64
    flops = params * 112 * 112
    cin = 64
    for s, (n, w) in enumerate(zip((3, 4, 6, 3), (64, 128, 256, 512), strict=True)):
        side = 56 >> s
        r = residual.get(s, w)
        for j in range(n):
            c1 = conv1_widths.get((s, j), w)
            p = 9 * (cin if j == 0 else r) * c1 + 9 * c1 * r
            params += p
            flops += p * side * side
        cin = r
    return flops + cin * 1000, params + cin * 1000


def test_count_zoo_closed_forms():
    for depth in (20, 56, 110):
        assert count(build_model(f"resnet{depth}"), (3, 32, 32)) == cifar_resnet_counts(depth, {})
    assert count(build_model("vgg16"), (3, 32, 32)) == vgg16_counts({})
    with torch.device("meta"):
        r34 = build_model("resnet34_imagenet", num_classes=1000)
    assert count(r34, (3, 224, 224)) == resnet34_counts({})


def _blocks(sizes):
    """(paper layer number of the block's first conv, stage, index) for every block."""
    out, b = [], 1
    for s, n in enumerate(sizes):
        for j in range(n):
            out.append((2 * b, s, j))
            b += 1
    return out


def _conv1_widths(sizes, widths, fractions, skip):
    return {(s, j): floor_kept(widths[s], fractions[s]) for layer, s, j in _blocks(sizes)
            if layer not in skip and fractions[s] > 0}


def expected_table() -> dict[str, tuple[int, int, int, int]]:
    """Every preset's (flops before, params before, flops after, params after), from closed forms."""
    out = {}
    vgg = vgg16_counts({1: 32, **{i: 256 for i in range(8, 14)}})
    out["vgg16-A"] = (*vgg16_counts({}), *vgg)
    for name, fr, skip in (("resnet56-A", (0.1, 0.1, 0.1), {16, 20, 38, 54}),
                           ("resnet56-B", (0.6, 0.3, 0.1), {16, 18, 20, 34, 38, 54})):
        out[name] = (*cifar_resnet_counts(56, {}),
                     *cifar_resnet_counts(56, _conv1_widths([9] * 3, (16, 32, 64), fr, skip)))
    for name, fr, skip in (("resnet110-A", (0.5, 0, 0), {36}), ("resnet110-B", (0.5, 0.4, 0.3), {36, 38, 74})):
        out[name] = (*cifar_resnet_counts(110, {}),
                     *cifar_resnet_counts(110, _conv1_widths([18] * 3, (16, 32, 64), fr, skip)))
    skip34 = {2, 8, 14, 16, 26, 28, 30, 32}
    for name, fr in (("resnet34-A", (0.3, 0.3, 0.3, 0)), ("resnet34-B", (0.5, 0.6, 0.4, 0))):
        out[name] = (*resnet34_counts({}),
                     *resnet34_counts(_conv1_widths([3, 4, 6, 3], (64, 128, 256, 512), fr, skip34)))
    out["resnet34-C"] = (*resnet34_counts({}), *resnet34_counts({}, {2: 204}))
    return out


@pytest.fixture(scope="module")
def table_rows():
    return {r.preset: r for r in table1()}


def test_presets_reproduce_exact_integers(table_rows):
    expected = expected_table()
    rows = table_rows
    assert set(rows) == set(expected) == set(PRESETS)
    for name, (f0, p0, f1, p1) in expected.items():
        r = rows[name]
        assert (r.flops_original, r.params_original, r.flops, r.params) == (f0, p0, f1, p1), name


def test_presets_against_the_paper(table_rows):
    """35 of the paper's 40 printed numbers agree at their precision; the five that do not are the
    ones docs/pruning_table.md explains (and no others)."""
    from landscape.prune.table import matches

    rows = table_rows
    off = []
    for r in rows.values():
        if f"{r.flops_pct:.1f}" != r.paper["flops_pct"]:
            off.append((r.preset, "flops_pct"))
        if f"{r.params_pct:.1f}" != r.paper["params_pct"]:
            off.append((r.preset, "params_pct"))
        digits = len(r.paper["params"].split("e")[0].split(".")[1])
        if f"{r.params:.{digits}e}".replace("e+0", "e") != r.paper["params"]:
            off.append((r.preset, "params"))
    assert sorted(off) == sorted([("resnet56-B", "params_pct"), ("resnet110-B", "flops_pct"),
                                  ("resnet110-B", "params_pct"), ("resnet34-A", "params"),
                                  ("resnet34-C", "flops_pct")])
    assert matches(list(rows.values())) == (35, 40)
    assert abs(rows["vgg16-A"].flops_pct - 34.2) < 0.05 and abs(rows["vgg16-A"].params_pct - 64.0) < 0.05


def test_preset_layer_numbering():
    r56a = preset("resnet56-A")
    assert len(r56a) == 27 - 4 and set(r56a.values()) == {0.1}
    for skipped in ("layer1.7.conv1", "layer2.0.conv1", "layer3.0.conv1", "layer3.8.conv1"):  # 16, 20, 38, 54
        assert skipped not in r56a
    r56b = preset("resnet56-B")
    assert "layer1.8.conv1" not in r56b and "layer2.7.conv1" not in r56b  # layers 18 and 34
    assert r56b["layer1.0.conv1"] == 0.6 and r56b["layer2.1.conv1"] == 0.3 and r56b["layer3.1.conv1"] == 0.1
    assert set(preset("resnet110-A")) == {f"layer1.{j}.conv1" for j in range(17)}
    c = preset("resnet34-C")
    assert c == {**{f"layer3.{j}.conv2": 0.2 for j in range(6)}, "layer3.0.downsample.0": 0.2}
    assert plan_widths(reference_model("resnet34-C"), c) == dict.fromkeys(c, 204)
    assert not any(k.startswith("layer4") for k in preset("resnet34-B"))
    assert preset("vgg16-A") == {f"features.{i}": 0.5 for i in (0, 24, 27, 30, 34, 37, 40)}


def test_preset_for_another_architecture_is_refused():
    with pytest.raises(LandscapeError, match="resnet56"):
        preset("resnet56-B", build_model("resnet20"))
    with pytest.raises(LandscapeError, match="vgg16"):
        prune_filters(build_model("resnet56"), "vgg16-A")
    with pytest.raises(LandscapeError, match="resnet56"):  # names that all exist in ResNet-110 too
        prune_filters(build_model("resnet110"), "resnet56-A")
    with pytest.raises(LandscapeError, match="unknown pruning preset"):
        preset("resnet57-A")


# ---------------------------------------------------------------------------- plans


def test_parse_plan():
    assert parse_plan("layer1.0.conv1=0.5, layer2.3.conv1=0.3") == {"layer1.0.conv1": 0.5, "layer2.3.conv1": 0.3}
    for bad, what in (("layer1.0.conv1", "layer=fraction"), ("a=1.0", r"\[0, 1\)"), ("a=-0.1", r"\[0, 1\)"),
                      ("a=x", "not a number"), ("a=0.1,a=0.2", "twice"), ("", "empty"), ("a=nan", r"\[0, 1\)")):
        with pytest.raises(LandscapeError, match=what):
            parse_plan(bad)


def test_plan_errors_name_the_layer():
    r20 = build_model("resnet20")
    cases = [
        ({"layer1.0.conv9": 0.5}, "unknown layer 'layer1.0.conv9'"),
        ({"linear": 0.5}, "'linear' is a Linear"),
        ({"layer1.0.conv1": 0.95}, "removes every filter"),  # floor(16 * 0.05) = 0
        ({"layer1.0.conv2": 0.5}, "cannot prune 'layer1.0.conv2' alone"),  # an identity-shortcut block
        ({"layer2.0.conv2": 0.5, "layer2.0.shortcut.0": 0.5}, "layer2.1.conv2"),  # part of a stage only
        ({**{f"layer2.{j}.conv2": 0.5 for j in range(3)}, "layer2.0.shortcut.0": 0.25}, "one fraction"),
        ({"layer1.0.conv1": 1.0}, r"\[0, 1\)"),
    ]
    for plan, message in cases:
        with pytest.raises(LandscapeError, match=message):
            prune_filters(r20, plan)
    # without skip connections a block's second conv is pruned alone
    assert prune_filters(build_model("resnet20_noshort"), {"layer1.0.conv2": 0.5}).layer1[0].conv2.out_channels == 8


class Sliced(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Conv2d(3, 4, 3, padding=1)
        self.b = nn.Conv2d(2, 2, 3, padding=1)

    def forward(self, x):
        return self.b(self.a(x)[:, :2]).mean((2, 3))


def test_unprunable_channels_are_refused_with_the_reason():
    with pytest.raises(LandscapeError, match="cannot prune 'a'.*getitem"):
        prune_filters(Sliced(), {"a": 0.5})
    with pytest.raises(LandscapeError, match="cannot prune 'b'.*output"):
        prune_filters(Sliced(), {"b": 0.5})


# ----------------------------------------------------------- removal = zeroed channels


VGG9_PLAN = {"features.0": 0.5, "features.3": 0.5, "features.14": 0.25, "features.20": 0.5}


def expected_vgg_keep(model: nn.Module, plan: dict[str, float], greedy: bool) -> dict[str, torch.Tensor]:
    """A plain loop over the convs in order: the paper's two definitions."""
    convs = [(n, m) for n, m in model.named_modules() if isinstance(m, nn.Conv2d)]
    keep, prev = {}, None
    for name, conv in convs:
        if name in plan:
            inputs = keep.get(prev) if greedy else None
            keep[name] = largest(l1(conv, inputs), floor_kept(conv.out_channels, plan[name]))
        prev = name
    return keep


@pytest.mark.parametrize("strategy", ["independent", "greedy"])
def test_pruned_vgg_equals_zeroed_feature_maps(strategy):
    model = randomized(build_model("vgg9"))
    x = torch.randn(3, 3, 32, 32, generator=torch.Generator().manual_seed(5))
    keep = expected_vgg_keep(model, VGG9_PLAN, strategy == "greedy")
    pruned = prune_filters(model, VGG9_PLAN, strategy).eval()
    after = {f"features.{int(n.split('.')[1]) + 1}": k for n, k in keep.items()}  # the BatchNorm after each
    ref = zeroed_output(model, x, after)
    with torch.no_grad():
        out = pruned(x)
        full = model(x)
    assert torch.allclose(out, ref, atol=1e-5)
    assert not torch.allclose(out, full, atol=1e-3)  # the pruning changed something
    assert pruned.features[0].weight.shape == (32, 3, 3, 3) and pruned.features[3].weight.shape == (32, 32, 3, 3)
    assert pruned.features[4].running_mean.shape == (32,)
    assert torch.equal(pruned.features[4].running_var, model.features[4].running_var[keep["features.3"]])
    assert pruned.fc[0].in_features == 128 * 4 * 4  # the last conv's 128 kept maps of 4x4
    sel = select(model, VGG9_PLAN, strategy)
    assert all(torch.equal(sel[k], keep[k]) for k in keep)


def test_vgg16_A_equals_zeroed_feature_maps():
    model = randomized(build_model("vgg16"), seed=1)
    x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(6))
    plan = preset("vgg16-A")
    keep = expected_vgg_keep(model, plan, greedy=False)
    pruned = prune_filters(model, "vgg16-A").eval()
    ref = zeroed_output(model, x, {f"features.{int(n.split('.')[1]) + 1}": k for n, k in keep.items()})
    with torch.no_grad():
        assert torch.allclose(pruned(x), ref, atol=1e-5)
    assert pruned.fc[0].in_features == 256
    assert count(pruned, (3, 32, 32)) == expected_table()["vgg16-A"][2:]


def test_greedy_and_independent_agree_without_consecutive_layers_and_differ_with():
    model = randomized(build_model("vgg9"), seed=2)
    apart = {"features.0": 0.5, "features.7": 0.5, "features.17": 0.5}  # a conv unpruned between each
    a, b = select(model, apart, "independent"), select(model, apart, "greedy")
    assert all(torch.equal(a[k], b[k]) for k in apart)
    # two consecutive layers, built so that the second's ranking depends on the first's removal:
    net = nn.Sequential(nn.Conv2d(1, 4, 1, bias=False), nn.BatchNorm2d(4), nn.ReLU(),
                        nn.Conv2d(4, 4, 1, bias=False), nn.BatchNorm2d(4), nn.ReLU(),
                        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 2))
    with torch.no_grad():
        net[0].weight.copy_(torch.tensor([0.1, 1.0, 2.0, 3.0]).view(4, 1, 1, 1))  # filter 0 goes
        w = torch.full((4, 4), 0.5)
        w[0] = torch.tensor([5.0, 0.0, 0.0, 0.0])  # large only on input map 0, which is removed
        net[3].weight.copy_(w.view(4, 4, 1, 1))
    plan = {"0": 0.25, "3": 0.25}
    ind, gre = select(net, plan, "independent"), select(net, plan, "greedy")
    assert ind["0"].tolist() == gre["0"].tolist() == [1, 2, 3]
    assert ind["3"].tolist() == [0, 1, 2]  # 5.0 over all kernels beats 2.0
    assert gre["3"].tolist() == [1, 2, 3]  # 0.0 over the surviving kernels: it goes
    x = torch.randn(4, 1, 5, 5)
    net.eval()
    for strategy, sel in (("independent", ind), ("greedy", gre)):
        ref = zeroed_output(net, x, {"1": sel["0"], "4": sel["3"]})
        with torch.no_grad():
            assert torch.allclose(prune_filters(net, plan, strategy).eval()(x), ref, atol=1e-5)


@pytest.mark.parametrize("strategy", ["independent", "greedy"])
def test_pruned_resnet_equals_zeroed_feature_maps(strategy):
    model = randomized(build_model("resnet20"), seed=3)
    mods = dict(model.named_modules())
    greedy = strategy == "greedy"
    # the plain definitions: the path is ranked by the projection's filters (whose inputs, stage 1,
    # are not pruned), each first conv by its own filters, over the surviving path maps if greedy
    path = largest(l1(mods["layer2.0.shortcut.0"]), 24)
    keep = {
        "layer1.0.conv1": largest(l1(mods["layer1.0.conv1"]), 8),
        "layer2.1.conv1": largest(l1(mods["layer2.1.conv1"], path if greedy else None), 16),
        "layer3.2.conv1": largest(l1(mods["layer3.2.conv1"]), 48),
    }
    pruned = prune_filters(model, RESNET_PLAN, strategy).eval()
    after = {k.replace("conv1", "bn1"): v for k, v in keep.items()}
    after.update({f"layer2.{j}.bn2": path for j in range(3)}, **{"layer2.0.shortcut.1": path})
    x = torch.randn(3, 3, 32, 32, generator=torch.Generator().manual_seed(7))
    ref = zeroed_output(model, x, after)
    with torch.no_grad():
        out = pruned(x)
    assert torch.allclose(out, ref, atol=1e-5)
    sel = select(model, RESNET_PLAN, strategy)
    assert all(torch.equal(sel[k], v) for k, v in keep.items())
    assert all(torch.equal(sel[f"layer2.{j}.conv2"], path) for j in range(3))
    assert pruned.layer3[0].conv1.in_channels == 24 and pruned.layer3[0].shortcut[0].in_channels == 24
    assert pruned.layer2[1].conv2.in_channels == 16 and pruned.layer2[2].conv1.in_channels == 24


def test_greedy_differs_on_resnet_after_a_pruned_path():
    model = randomized(build_model("resnet20"), seed=3)
    a, b = select(model, RESNET_PLAN, "independent"), select(model, RESNET_PLAN, "greedy")
    assert not torch.equal(a["layer2.1.conv1"], b["layer2.1.conv1"])
    assert torch.equal(a["layer1.0.conv1"], b["layer1.0.conv1"])


def test_resnet34_C_equals_zeroed_feature_maps():
    model = randomized(build_model("resnet34_imagenet"), seed=4)
    mods = dict(model.named_modules())
    path = largest(l1(mods["layer3.0.downsample.0"]), 204)
    pruned = prune_filters(model, "resnet34-C").eval()
    after = {f"layer3.{j}.bn2": path for j in range(6)} | {"layer3.0.downsample.1": path}
    x = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(8))
    with torch.no_grad():
        assert torch.allclose(pruned(x), zeroed_output(model, x, after), atol=1e-5)
    assert pruned.layer4[0].downsample[0].in_channels == 204 and pruned.layer4[0].conv1.in_channels == 204


def test_whole_stage_one_path_with_the_stem():
    """Without a projection the stage-1 path (stem + every conv2) is ranked by the sum of its filters."""
    model = randomized(build_model("resnet20"), seed=5)
    mods = dict(model.named_modules())
    plan = {"conv1": 0.5, **{f"layer1.{j}.conv2": 0.5 for j in range(3)}}
    path = largest(sum(l1(mods[k]) for k in plan), 8)
    after = {"bn1": path} | {f"layer1.{j}.bn2": path for j in range(3)}
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.allclose(prune_filters(model, plan).eval()(x), zeroed_output(model, x, after), atol=1e-5)


class Concat(nn.Module):
    """Two branches concatenated (a dense block's layout), BatchNorm over the concatenation."""

    def __init__(self):
        super().__init__()
        self.a = nn.Conv2d(3, 4, 3, padding=1)
        self.b = nn.Conv2d(3, 6, 3, padding=1)
        self.bn = nn.BatchNorm2d(10)
        self.c = nn.Conv2d(10, 5, 1)
        self.fc = nn.Linear(5 * 4, 3)

    def forward(self, x):
        y = F.relu(self.bn(torch.cat([self.a(x), self.b(x)], 1)))
        return self.fc(F.adaptive_avg_pool2d(self.c(y), 2).flatten(1))


def test_concatenated_channels():
    model = randomized(Concat(), seed=6)
    keep_b = largest(l1(model.b), 3)
    pruned = prune_filters(model, {"b": 0.5}).eval()
    assert pruned.bn.num_features == 7 and pruned.c.in_channels == 7
    mask_after_bn = torch.cat([torch.arange(4), 4 + keep_b])
    x = torch.randn(2, 3, 6, 6)
    with torch.no_grad():
        assert torch.allclose(pruned(x), zeroed_output(model, x, {"bn": mask_after_bn}), atol=1e-5)


def test_input_model_is_not_modified():
    model = randomized(build_model("resnet20"))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    prune_filters(model, RESNET_PLAN)
    after = model.state_dict()
    assert before.keys() == after.keys() and all(torch.equal(before[k], after[k]) for k in before)


def test_graph_of_the_zoo():
    g = channel_graph(build_model("resnet56"))
    assert len(g.prunable()) == 27  # every block's first conv, nothing else
    assert set(channel_graph(build_model("vgg16")).prunable()) == {n for n, m in build_model("vgg16").named_modules()
                                                            if isinstance(m, nn.Conv2d)}
    assert len(channel_graph(build_model("resnet56_noshort")).prunable()) == 55  # every conv: no residual sums
    assert g.group_of("layer3.4.conv2").leaders == ["layer3.0.shortcut.0"]


# ------------------------------------------------------------------------------ widths


def test_resize_then_load_state_dict_gives_identical_outputs(tmp_path):
    from landscape.prune import save_pruned, widths_of

    model = randomized(build_model("resnet20"))
    pruned = prune_filters(model, RESNET_PLAN).eval()
    path = tmp_path / "p.pt"
    ckpt = save_pruned(path, pruned, original=model, arch="resnet20", plan=RESNET_PLAN, input_shape=(3, 32, 32),
                       num_classes=10, in_channels=3, strategy="independent", source=None)
    obj = torch.load(path, weights_only=True)
    assert obj["widths"] == ckpt["widths"] == {**plan_widths(model, RESNET_PLAN)}
    assert obj["widths"]["layer2.0.shortcut.0"] == 24 and obj["widths"]["layer1.0.conv1"] == 8
    p = obj["prune"]
    assert (p["flops"], p["params"]) == count(pruned, (3, 32, 32))
    assert (p["flops_original"], p["params_original"]) == count(model, (3, 32, 32))
    assert p["plan"] == RESNET_PLAN and p["strategy"] == "independent" and p["preset"] == ""
    rebuilt = resize_(build_model("resnet20"), widths_of(obj))
    rebuilt.load_state_dict(obj["state_dict"], strict=True)
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(rebuilt.eval()(x), pruned(x))
    assert widths_of({"state_dict": {}}) is None
    with pytest.raises(LandscapeError):
        widths_of({"widths": {"conv1": "8"}})


def test_resize_initializes_afresh():
    torch.manual_seed(0)
    model = resize_(build_model("resnet20"), {"layer1.0.conv1": 8})
    conv2 = model.layer1[0].conv2
    assert conv2.weight.shape == (16, 8, 3, 3) and model.layer1[0].bn1.num_features == 8
    # PyTorch's default init for 8 * 9 inputs: uniform within 1 / sqrt(72); a slice of the
    # full-width initialization would stay within 1 / sqrt(144)
    bound = 1 / math.sqrt(72)
    assert conv2.weight.abs().max() <= bound and conv2.weight.abs().max() > 1 / math.sqrt(144)
    assert torch.equal(model.layer1[0].bn1.running_var, torch.ones(8))
    with pytest.raises(LandscapeError, match="outside"):
        resize_(build_model("resnet20"), {"layer1.0.conv1": 17})
    with pytest.raises(LandscapeError, match="give all"):
        resize_(build_model("resnet20"), {"layer2.0.shortcut.0": 8})


def test_load_model_rebuilds_a_pruned_checkpoint(tmp_path):
    """The one network builder (``landscape.jobs.network``) applies the recorded widths."""
    from landscape.jobs.network import load_model
    from landscape.prune import save_pruned

    model = randomized(build_model("vgg9"))
    pruned = prune_filters(model, VGG9_PLAN).eval()
    save_pruned(tmp_path / "v.pt", pruned, original=model, arch="vgg9", plan=VGG9_PLAN, input_shape=(3, 32, 32),
                num_classes=10, in_channels=3)
    loaded = load_model("vgg9", tmp_path / "v.pt").eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(loaded(x), pruned(x))


class Separable(nn.Module):
    """conv, BN, then a depthwise conv (one filter per channel: it follows the pruned channels)."""

    def __init__(self):
        super().__init__()
        self.a = nn.Conv2d(3, 8, 3, padding=1)
        self.bn_a = nn.BatchNorm2d(8)
        self.dw = nn.Conv2d(8, 8, 3, padding=1, groups=8)
        self.bn_dw = nn.BatchNorm2d(8)
        self.pw = nn.Conv2d(8, 4, 1)
        self.fc = nn.Linear(4, 2)

    def forward(self, x):
        x = F.relu(self.bn_dw(self.dw(F.relu(self.bn_a(self.a(x))))))
        return self.fc(F.adaptive_avg_pool2d(self.pw(x), 1).flatten(1))


def test_depthwise_conv_follows_its_input_channels():
    model = randomized(Separable(), seed=9)
    keep = largest(l1(model.a), 4)
    pruned = prune_filters(model, {"a": 0.5}).eval()
    assert pruned.dw.weight.shape == (4, 1, 3, 3) and pruned.dw.groups == 4 and pruned.pw.in_channels == 4
    # a removed map is zero after bn_a; the depthwise conv then only adds its bias, which bn_dw and
    # ReLU turn into a constant map that the pruned network no longer has: zero it after bn_dw too
    x = torch.randn(2, 3, 6, 6)
    with torch.no_grad():
        assert torch.allclose(pruned(x), zeroed_output(model, x, {"bn_a": keep, "bn_dw": keep}), atol=1e-5)
    with pytest.raises(LandscapeError, match="depthwise"):
        prune_filters(model, {"dw": 0.5})
    assert count(pruned, (3, 6, 6))[0] == 4 * 36 * 27 + 4 * 36 * 9 + 4 * 36 * 4 + 4 * 2


def test_densenet_layers_pruned_through_concatenations():
    """In a DenseNet a layer's maps are concatenated into every later layer's input and normalized
    there (BatchNorm before the conv). With the BatchNorm shifts at zero a zeroed map stays zero
    everywhere, so removing it must equal zeroing it at the conv that makes it."""
    model = randomized(build_model("densenet_cifar"), seed=2)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.zero_()
                m.bias.zero_()
    plan = {"dense1.0.conv2": 0.5, "dense2.3.conv1": 0.5, "trans1.conv": 0.25, "dense3.1.conv2": 0.5}
    mods = dict(model.named_modules())
    keep = {k: largest(l1(mods[k]), floor_kept(mods[k].out_channels, p)) for k, p in plan.items()}
    pruned = prune_filters(model, plan).eval()
    assert pruned.dense1[1].bn1.num_features == model.dense1[1].bn1.num_features - 6
    x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        assert torch.allclose(pruned(x), zeroed_output(model, x, keep), atol=1e-5)
