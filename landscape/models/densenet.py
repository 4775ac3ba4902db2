"""DenseNets for CIFAR (BN-ReLU-conv bottleneck layers, growth rate k, compression 0.5), with
the original loss-landscape tool's parameter names: ``densenet121`` (blocks 6-12-24-16, k=32,
6,956,298 parameters), ``densenet169/201/161`` and ``densenet_cifar`` (k=12)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from landscape.models.registry import register


class DenseLayer(nn.Module):
    """BN-ReLU-conv1x1 (4k) then BN-ReLU-conv3x3 (k); output concatenated in front of the input."""

    def __init__(self, in_planes: int, growth_rate: int):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_planes)
        self.conv1 = nn.Conv2d(in_planes, 4 * growth_rate, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(4 * growth_rate)
        self.conv2 = nn.Conv2d(4 * growth_rate, growth_rate, 3, padding=1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv1(F.relu(self.bn1(x)))
        out = self.conv2(F.relu(self.bn2(out)))
        return torch.cat([out, x], 1)


class Transition(nn.Module):
    """BN-ReLU-conv1x1 then 2x2 average pooling."""

    def __init__(self, in_planes: int, out_planes: int):
        super().__init__()
        self.bn = nn.BatchNorm2d(in_planes)
        self.conv = nn.Conv2d(in_planes, out_planes, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.avg_pool2d(self.conv(F.relu(self.bn(x))), 2)


class DenseNet(nn.Module):
    """Four dense blocks with three transitions, final BN-ReLU, global pooling, linear."""

    def __init__(
        self,
        nblocks: list[int],
        growth_rate: int = 12,
        reduction: float = 0.5,
        num_classes: int = 10,
        in_channels: int = 3,
    ):
        super().__init__()
        self.growth_rate = growth_rate
        planes = 2 * growth_rate
        self.conv1 = nn.Conv2d(in_channels, planes, 3, padding=1, bias=False)
        for i, n in enumerate(nblocks):
            setattr(self, f"dense{i + 1}", self._dense(planes, n))
            planes += n * growth_rate
            if i < len(nblocks) - 1:
                out_planes = int(math.floor(planes * reduction))
                setattr(self, f"trans{i + 1}", Transition(planes, out_planes))
                planes = out_planes
        self.num_blocks = len(nblocks)
        self.bn = nn.BatchNorm2d(planes)
        self.linear = nn.Linear(planes, num_classes)

    def _dense(self, in_planes: int, n: int) -> nn.Sequential:
        layers = []
        for _ in range(n):
            layers.append(DenseLayer(in_planes, self.growth_rate))
            in_planes += self.growth_rate
        return nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv1(x)
        for i in range(self.num_blocks):
            out = getattr(self, f"dense{i + 1}")(out)
            if i < self.num_blocks - 1:
                out = getattr(self, f"trans{i + 1}")(out)
        out = F.adaptive_avg_pool2d(F.relu(self.bn(out)), 1).flatten(1)
        return self.linear(out)


_CONFIGS = {
    "densenet121": ([6, 12, 24, 16], 32),
    "densenet169": ([6, 12, 32, 32], 32),
    "densenet201": ([6, 12, 48, 32], 32),
    "densenet161": ([6, 12, 36, 24], 48),
    "densenet_cifar": ([6, 12, 24, 16], 12),
}


def _register(name: str) -> None:
    blocks, k = _CONFIGS[name]

    def make(num_classes: int = 10, in_channels: int = 3) -> nn.Module:
        return DenseNet(blocks, k, 0.5, num_classes, in_channels)

    make.__name__ = name
    make.__doc__ = f"{name}: CIFAR DenseNet, blocks {blocks}, growth rate {k}"
    register(name)(make)


for _name in _CONFIGS:
    _register(_name)
