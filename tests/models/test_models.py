"""The model zoo: parameter counts and key lists written down from the architecture definitions
of the original loss-landscape tool (``cifar10/models``), output shapes, checkpoint round trips."""

from __future__ import annotations

import math

import pytest
import torch

from landscape.io.checkpoint import load_into_, load_state_dict
from landscape.models import build_model, list_models

ZOO = [
    "vgg9", "vgg16", "densenet121", "resnet18", "resnet34", "resnet18_imagenet",
    "resnet34_imagenet", "mlp", "mlp_mnist", "lenet",
] + [f"resnet{d}{s}" for d in (20, 32, 44, 56, 110) for s in ("", "_noshort")] + [
    f"wrn56_{k}{s}" for k in (2, 4, 8) for s in ("", "_noshort")
]


def n_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def meta_model(name: str, num_classes: int = 10, in_channels: int = 3) -> torch.nn.Module:
    """Build on the meta device: shapes without memory or initialization cost."""
    with torch.device("meta"):
        return build_model(name, num_classes=num_classes, in_channels=in_channels)


# --- independent descriptions of the original architectures --------------------------------


def conv(cin: int, cout: int, k: int, bias: bool = False) -> int:
    return cin * cout * k * k + (cout if bias else 0)


def bn(c: int) -> int:
    return 2 * c


def cifar_resnet_keys(depth: int, width: int = 1, shortcut: bool = True, classes: int = 10,
                      cin: int = 3) -> dict[str, tuple[int, ...]]:
    """State dict keys and shapes of the original ResNet_cifar / WResNet_cifar."""
    n = (depth - 2) // 6
    keys: dict[str, tuple[int, ...]] = {}

    def add_bn(prefix: str, c: int) -> None:
        for s in ("weight", "bias", "running_mean", "running_var"):
            keys[f"{prefix}.{s}"] = (c,)
        keys[f"{prefix}.num_batches_tracked"] = ()

    w0 = 16 * width
    keys["conv1.weight"] = (w0, cin, 3, 3)
    add_bn("bn1", w0)
    cin_block = w0
    for stage, planes in enumerate((16 * width, 32 * width, 64 * width)):
        for b in range(n):
            stride = 2 if (stage > 0 and b == 0) else 1
            p = f"layer{stage + 1}.{b}"
            keys[f"{p}.conv1.weight"] = (planes, cin_block, 3, 3)
            add_bn(f"{p}.bn1", planes)
            keys[f"{p}.conv2.weight"] = (planes, planes, 3, 3)
            add_bn(f"{p}.bn2", planes)
            if shortcut and (stride != 1 or cin_block != planes):
                keys[f"{p}.shortcut.0.weight"] = (planes, cin_block, 1, 1)
                add_bn(f"{p}.shortcut.1", planes)
            cin_block = planes
    keys["linear.weight"] = (classes, 64 * width)
    keys["linear.bias"] = (classes,)
    return keys


def count_from_keys(keys: dict[str, tuple[int, ...]]) -> int:
    return sum(math.prod(s) for k, s in keys.items()
               if not k.endswith(("running_mean", "running_var", "num_batches_tracked")))


def vgg_keys(cfg: list, classes: int = 10) -> dict[str, tuple[int, ...]]:
    """The original VGG: features = [conv, bn, relu]* and maxpools; fc = Linear, BN1d, ReLU."""
    keys: dict[str, tuple[int, ...]] = {}
    i, cin, size = 0, 3, 32
    for v in cfg:
        if v == "M":
            i += 1
            size //= 2
            continue
        keys[f"features.{i}.weight"] = (v, cin, 3, 3)
        keys[f"features.{i}.bias"] = (v,)
        for s in ("weight", "bias", "running_mean", "running_var"):
            keys[f"features.{i + 1}.{s}"] = (v,)
        keys[f"features.{i + 1}.num_batches_tracked"] = ()
        i += 3
        cin = v
    keys["fc.0.weight"] = (cin, cin * size * size)
    keys["fc.0.bias"] = (cin,)
    for s in ("weight", "bias", "running_mean", "running_var"):
        keys[f"fc.1.{s}"] = (cin,)
    keys["fc.1.num_batches_tracked"] = ()
    keys["classifier.weight"] = (classes, cin)
    keys["classifier.bias"] = (classes,)
    return keys


VGG9 = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M"]
VGG16 = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"]


def densenet_count(blocks: list[int], k: int, classes: int = 10) -> int:
    planes = 2 * k
    total = conv(3, planes, 3)
    for i, nb in enumerate(blocks):
        for _ in range(nb):
            total += bn(planes) + conv(planes, 4 * k, 1) + bn(4 * k) + conv(4 * k, k, 3)
            planes += k
        if i < len(blocks) - 1:
            out = planes // 2
            total += bn(planes) + conv(planes, out, 1)
            planes = out
    return total + bn(planes) + planes * classes + classes


def four_stage_count(blocks: list[int], imagenet: bool, classes: int = 10) -> int:
    total = conv(3, 64, 7 if imagenet else 3) + bn(64)
    cin = 64
    for i, (nb, planes) in enumerate(zip(blocks, (64, 128, 256, 512), strict=True)):
        for b in range(nb):
            stride = 2 if (i > 0 and b == 0) else 1
            total += conv(cin, planes, 3) + bn(planes) + conv(planes, planes, 3) + bn(planes)
            if stride != 1 or cin != planes:
                total += conv(cin, planes, 1) + bn(planes)
            cin = planes
    return total + 512 * classes + classes


# --- tests ----------------------------------------------------------------------------------


def test_registry_has_the_zoo():
    names = set(list_models())
    assert set(ZOO) <= names
    assert {"resnet50", "densenet_cifar", "wrn110_2_noshort", "vgg19"} <= names


@pytest.mark.parametrize(
    "name,expected",
    [("resnet20", 272_474), ("resnet56", 855_770), ("resnet110", 1_730_714),
     ("densenet121", 6_956_298), ("resnet18", 11_173_962), ("vgg16", 14_991_946),
     ("lenet", 61_706), ("mlp", 64 * 128 + 128 + 128 * 128 + 128 + 128 * 10 + 10)],
)
def test_published_parameter_counts(name, expected):
    in_ch = 1 if name in ("lenet", "mlp") else 3
    assert n_params(meta_model(name, in_channels=in_ch)) == expected


@pytest.mark.parametrize("depth", [20, 32, 44, 56, 110])
@pytest.mark.parametrize("shortcut", [True, False])
def test_cifar_resnet_keys_and_shapes_match_the_original(depth, shortcut):
    name = f"resnet{depth}" + ("" if shortcut else "_noshort")
    sd = meta_model(name).state_dict()
    expected = cifar_resnet_keys(depth, 1, shortcut)
    assert {k: tuple(v.shape) for k, v in sd.items()} == expected
    assert n_params(meta_model(name)) == count_from_keys(expected)


@pytest.mark.parametrize("k", [2, 4, 8])
@pytest.mark.parametrize("shortcut", [True, False])
def test_wide_resnet_keys_match_the_original(k, shortcut):
    name = f"wrn56_{k}" + ("" if shortcut else "_noshort")
    sd = meta_model(name).state_dict()
    expected = cifar_resnet_keys(56, k, shortcut)
    assert {key: tuple(v.shape) for key, v in sd.items()} == expected


def test_noshort_differs_only_by_the_shortcut_projections():
    short = set(meta_model("resnet56").state_dict())
    noshort = set(meta_model("resnet56_noshort").state_dict())
    assert noshort < short
    assert all(".shortcut." in k for k in short - noshort)
    assert len(short - noshort) == 2 * 6  # two projections, conv + 5 BN entries each


@pytest.mark.parametrize("name,cfg", [("vgg9", VGG9), ("vgg16", VGG16)])
def test_vgg_keys_and_shapes_match_the_original(name, cfg):
    sd = meta_model(name).state_dict()
    expected = vgg_keys(cfg)
    assert {k: tuple(v.shape) for k, v in sd.items()} == expected
    assert n_params(meta_model(name)) == count_from_keys(expected)


def test_densenet_and_four_stage_counts():
    assert n_params(meta_model("densenet121")) == densenet_count([6, 12, 24, 16], 32)
    assert n_params(meta_model("densenet_cifar")) == densenet_count([6, 12, 24, 16], 12)
    assert n_params(meta_model("resnet18")) == four_stage_count([2, 2, 2, 2], False)
    assert n_params(meta_model("resnet34")) == four_stage_count([3, 4, 6, 3], False)
    assert n_params(meta_model("resnet18_imagenet")) == four_stage_count([2, 2, 2, 2], True)
    # torchvision's ResNet-18/34 with 1000 classes: 11,689,512 and 21,797,672 parameters
    assert n_params(meta_model("resnet18_imagenet", 1000)) == 11_689_512
    assert n_params(meta_model("resnet34_imagenet", 1000)) == 21_797_672
    sd = meta_model("densenet121").state_dict()
    assert tuple(sd["conv1.weight"].shape) == (64, 3, 3, 3)
    assert tuple(sd["dense4.15.conv2.weight"].shape) == (32, 128, 3, 3)
    assert tuple(sd["trans3.conv.weight"].shape) == (512, 1024, 1, 1)
    assert tuple(sd["linear.weight"].shape) == (10, 1024)


@pytest.mark.parametrize("name", ZOO)
def test_output_shapes(name):
    small = name in ("mlp", "mlp_mnist", "lenet")
    in_ch = 1 if small else 3
    side = {"mlp": 8, "mlp_mnist": 28, "lenet": 28}.get(name, 64 if "imagenet" in name else 32)
    model = meta_model(name, num_classes=7, in_channels=in_ch)
    out = model(torch.empty(2, in_ch, side, side, device="meta"))
    assert tuple(out.shape) == (2, 7)


@pytest.mark.parametrize("name", ["resnet20", "resnet20_noshort", "vgg9", "wrn56_2", "lenet"])
def test_real_forward_is_finite_and_options_apply(name):
    torch.manual_seed(0)
    in_ch = 1 if name == "lenet" else 2
    model = build_model(name, num_classes=100, in_channels=in_ch).eval()
    with torch.no_grad():
        out = model(torch.randn(2, in_ch, 32, 32))
    assert out.shape == (2, 100) and torch.isfinite(out).all()


def test_larger_inputs_for_resnet18_and_mnist_sizes():
    torch.manual_seed(0)
    with torch.no_grad():
        assert build_model("resnet18").eval()(torch.randn(1, 3, 64, 64)).shape == (1, 10)
        lenet = build_model("lenet", in_channels=1).eval()
        assert lenet(torch.randn(2, 1, 28, 28)).shape == (2, 10)


@pytest.mark.parametrize("name", ["resnet20", "resnet20_noshort", "vgg9", "densenet_cifar"])
def test_state_dict_round_trip_gives_identical_outputs(name, tmp_path):
    torch.manual_seed(1)
    side = 16 if name.startswith("densenet") else 32  # any size works; keep the test quick
    model = build_model(name)
    model.train()
    with torch.no_grad():  # move the BN running statistics away from their defaults
        model(torch.randn(4, 3, side, side))
    model.eval()
    path = tmp_path / "model.pt"
    torch.save({"state_dict": model.state_dict(), "epoch": 3, "accuracy": 12.5}, path)
    torch.manual_seed(2)
    fresh = build_model(name)
    load_into_(fresh, load_state_dict(path))
    fresh.eval()
    x = torch.randn(2, 3, side, side)
    with torch.no_grad():
        assert torch.equal(model(x), fresh(x))


def test_original_t7_checkpoint_format_loads(tmp_path):
    """The original cifar10/main.py saves {'acc', 'epoch', 'state_dict'} with torch.save; old
    PyTorch wrote the legacy (non-zip) format, DataParallel runs a ``module.`` prefix, and
    PyTorch < 0.4.1 had no ``num_batches_tracked`` buffers."""
    torch.manual_seed(0)
    model = build_model("resnet20").eval()
    sd = {"module." + k: v for k, v in model.state_dict().items()
          if not k.endswith("num_batches_tracked")}
    path = tmp_path / "model_300.t7"
    torch.save({"acc": 93.1, "epoch": 300, "state_dict": sd}, path,
               _use_new_zipfile_serialization=False)
    loaded = load_state_dict(path)  # weights_only=True
    assert set(loaded) == {k[len("module."):] for k in sd}
    fresh = load_into_(build_model("resnet20"), loaded)  # what landscape-surf and -traj call
    fresh.eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(model(x), fresh(x))
