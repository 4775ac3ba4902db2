"""VGG nets for CIFAR with BatchNorm, with the original loss-landscape tool's parameter names.

Each 3x3 conv (with bias) is followed by BatchNorm and ReLU; ``M`` is 2x2 max-pooling. The head is
``fc`` = Linear(maps * s * s, maps) + BatchNorm1d + ReLU, then ``classifier`` = Linear(maps,
classes), where ``s`` is the spatial size left after pooling. ``vgg16`` is also the CIFAR VGG-16
of the filter-pruning paper (Li et al., ICLR'17: BatchNorm after every conv and the first linear
layer, no dropout; 15.0M parameters).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from landscape.models.registry import register

CONFIGS: dict[str, list[int | str]] = {
    "vgg9": [64, 64, "M", 128, 128, "M", 256, 256, 256, "M"],
    "vgg11": [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "vgg16": [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M",
              512, 512, 512, "M"],
    "vgg19": [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M",
              512, 512, 512, 512, "M"],
}


class VGG(nn.Module):
    """VGG-style conv net; ``input_size`` (side of the square input) sizes the first linear."""

    def __init__(
        self,
        cfg: list[int | str],
        num_classes: int = 10,
        in_channels: int = 3,
        input_size: int = 32,
    ):
        super().__init__()
        layers: list[nn.Module] = []
        channels, size = in_channels, input_size
        for v in cfg:
            if v == "M":
                layers.append(nn.MaxPool2d(kernel_size=2, stride=2, ceil_mode=True))
                size = math.ceil(size / 2)
            else:
                layers += [nn.Conv2d(channels, int(v), 3, padding=1), nn.BatchNorm2d(int(v)),
                           nn.ReLU(inplace=True)]
                channels = int(v)
        self.features = nn.Sequential(*layers)
        self.fc = nn.Sequential(
            nn.Linear(channels * size * size, channels),
            nn.BatchNorm1d(channels),
            nn.ReLU(inplace=True),
        )
        self.classifier = nn.Linear(channels, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.fc(self.features(x).flatten(1)))


def _register(name: str) -> None:
    def make(num_classes: int = 10, in_channels: int = 3) -> nn.Module:
        return VGG(CONFIGS[name], num_classes, in_channels)

    make.__name__ = name
    make.__doc__ = f"{name}: CIFAR VGG with BatchNorm for 32x32 inputs"
    register(name)(make)


for _name in CONFIGS:
    _register(_name)
