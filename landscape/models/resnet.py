"""ResNets of the loss-landscape paper's zoo, with the original tool's parameter names.

* ``resnet20/32/44/56/110`` (and ``resnet50_16``): the CIFAR ResNets of He et al. (3 stages of
  ``n = (depth - 2) / 6`` basic blocks, 16/32/64 filters, projection shortcuts where the shape
  changes), and their ``_noshort`` twins without any skip connection.
* ``wrn56_2/4/8`` (and ``wrn110_2/4``), ``_noshort`` too: the same network k times wider.
* ``resnet18/34/50/101/152`` (and ``_noshort``): the four-stage 64..512 ResNets of the original
  tool's zoo, 3x3 stem without max-pooling; the final pooling is adaptive, so they also take
  inputs larger than 32x32 (identical outputs on 32x32, where the original pooled 4x4 maps).

State dict keys and shapes match ``tomgoldstein/loss-landscape`` ``cifar10/models/resnet.py``,
so its ``.t7`` checkpoints load with ``strict=True``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from landscape.models.registry import register


class BasicBlock(nn.Module):
    """Two 3x3 conv-BN layers, optionally with an identity or 1x1-projection skip connection."""

    expansion = 1

    def __init__(self, in_planes: int, planes: int, stride: int = 1, shortcut: bool = True):
        super().__init__()
        self.use_shortcut = shortcut
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        if shortcut:
            self.shortcut = _projection(in_planes, planes * self.expansion, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        if self.use_shortcut:
            out = out + self.shortcut(x)
        return F.relu(out)


class Bottleneck(nn.Module):
    """1x1 reduce, 3x3, 1x1 expand (x4), optionally with a skip connection."""

    expansion = 4

    def __init__(self, in_planes: int, planes: int, stride: int = 1, shortcut: bool = True):
        super().__init__()
        self.use_shortcut = shortcut
        self.conv1 = nn.Conv2d(in_planes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * self.expansion, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * self.expansion)
        if shortcut:
            self.shortcut = _projection(in_planes, planes * self.expansion, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = F.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        if self.use_shortcut:
            out = out + self.shortcut(x)
        return F.relu(out)


def _projection(in_planes: int, out_planes: int, stride: int) -> nn.Sequential:
    """Identity (an empty Sequential, no parameters) or 1x1 conv + BN where the shape changes."""
    if stride == 1 and in_planes == out_planes:
        return nn.Sequential()
    return nn.Sequential(
        nn.Conv2d(in_planes, out_planes, 1, stride=stride, bias=False),
        nn.BatchNorm2d(out_planes),
    )


class ResNet(nn.Module):
    """conv3x3-BN-ReLU stem, stages of blocks (stride 2 from the second stage), global average
    pooling and one linear layer; ``widths`` gives the stages' filter counts."""

    def __init__(
        self,
        block: type[BasicBlock] | type[Bottleneck],
        num_blocks: list[int],
        widths: list[int],
        shortcut: bool = True,
        num_classes: int = 10,
        in_channels: int = 3,
    ):
        super().__init__()
        self.in_planes = widths[0]
        self.conv1 = nn.Conv2d(in_channels, widths[0], 3, stride=1, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(widths[0])
        for i, (n, width) in enumerate(zip(num_blocks, widths, strict=True)):
            stage = self._make_stage(block, width, n, 1 if i == 0 else 2, shortcut)
            setattr(self, f"layer{i + 1}", stage)
        self.num_stages = len(num_blocks)
        self.linear = nn.Linear(widths[-1] * block.expansion, num_classes)

    def _make_stage(self, block, planes: int, n: int, stride: int, shortcut: bool) -> nn.Sequential:
        layers = []
        for s in [stride] + [1] * (n - 1):
            layers.append(block(self.in_planes, planes, s, shortcut))
            self.in_planes = planes * block.expansion
        return nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        for i in range(self.num_stages):
            out = getattr(self, f"layer{i + 1}")(out)
        out = F.adaptive_avg_pool2d(out, 1).flatten(1)
        return self.linear(out)


def cifar_resnet(
    depth: int, width: int = 1, shortcut: bool = True, num_classes: int = 10, in_channels: int = 3
) -> ResNet:
    """CIFAR ResNet-``depth`` (depth = 6n + 2), ``width`` times wider (Wide-ResNet-depth-width)."""
    if (depth - 2) % 6:
        raise ValueError(f"CIFAR ResNet depth must be 6n+2, got {depth}")
    n = (depth - 2) // 6
    widths = [16 * width, 32 * width, 64 * width]
    return ResNet(BasicBlock, [n, n, n], widths, shortcut, num_classes, in_channels)


def _register_cifar(name: str, depth: int, width: int, shortcut: bool) -> None:
    def make(num_classes: int = 10, in_channels: int = 3) -> nn.Module:
        return cifar_resnet(depth, width, shortcut, num_classes, in_channels)

    make.__name__ = name
    make.__doc__ = f"{name}: CIFAR ResNet depth {depth}, width x{width}" + (
        "" if shortcut else ", no skip connections"
    )
    register(name)(make)


for _depth in (20, 32, 44, 56, 110):
    _register_cifar(f"resnet{_depth}", _depth, 1, True)
    _register_cifar(f"resnet{_depth}_noshort", _depth, 1, False)
# The original zoo's 50-layer 16-filter CIFAR net (not the four-stage ResNet-50).
_register_cifar("resnet50_16", 50, 1, True)
_register_cifar("resnet50_16_noshort", 50, 1, False)
for _k in (2, 4, 8):
    _register_cifar(f"wrn56_{_k}", 56, _k, True)
    _register_cifar(f"wrn56_{_k}_noshort", 56, _k, False)
for _k in (2, 4):
    _register_cifar(f"wrn110_{_k}", 110, _k, True)
    _register_cifar(f"wrn110_{_k}_noshort", 110, _k, False)

_FOUR_STAGE = {
    18: (BasicBlock, [2, 2, 2, 2]),
    34: (BasicBlock, [3, 4, 6, 3]),
    50: (Bottleneck, [3, 4, 6, 3]),
    101: (Bottleneck, [3, 4, 23, 3]),
    152: (Bottleneck, [3, 8, 36, 3]),
}


def _register_four_stage(depth: int, shortcut: bool) -> None:
    block, blocks = _FOUR_STAGE[depth]
    name = f"resnet{depth}" + ("" if shortcut else "_noshort")

    def make(num_classes: int = 10, in_channels: int = 3) -> nn.Module:
        return ResNet(block, blocks, [64, 128, 256, 512], shortcut, num_classes, in_channels)

    make.__name__ = name
    make.__doc__ = f"{name}: four-stage ResNet-{depth} with a 3x3 stem (original zoo layout)"
    register(name)(make)


for _depth in _FOUR_STAGE:
    _register_four_stage(_depth, True)
    _register_four_stage(_depth, False)
