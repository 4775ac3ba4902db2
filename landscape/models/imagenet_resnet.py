"""ResNet-18/34 for larger (ImageNet-size) inputs, in torchvision's layout and parameter names
(7x7 stride-2 stem, 3x3 max-pooling, ``downsample`` projections, ``fc`` head), so torchvision
state dicts load into ``resnet18_imagenet`` / ``resnet34_imagenet`` with ``strict=True``.
No torchvision import is needed."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from landscape.models.registry import register


class _Block(nn.Module):
    def __init__(self, in_planes: int, planes: int, stride: int, shortcut: bool):
        super().__init__()
        self.use_shortcut = shortcut
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample: nn.Module | None = None
        if shortcut and (stride != 1 or in_planes != planes):
            self.downsample = nn.Sequential(
                nn.Conv2d(in_planes, planes, 1, stride=stride, bias=False), nn.BatchNorm2d(planes)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        if self.use_shortcut:
            out = out + (x if self.downsample is None else self.downsample(x))
        return F.relu(out)


class ImageNetResNet(nn.Module):
    """torchvision-layout basic-block ResNet (``resnet18``: [2,2,2,2], ``resnet34``: [3,4,6,3])."""

    def __init__(
        self,
        blocks: list[int],
        num_classes: int = 1000,
        in_channels: int = 3,
        shortcut: bool = True,
    ):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, 64, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        in_planes = 64
        for i, (n, planes) in enumerate(zip(blocks, (64, 128, 256, 512), strict=True)):
            layers = []
            for j in range(n):
                layers.append(_Block(in_planes, planes, 2 if (i > 0 and j == 0) else 1, shortcut))
                in_planes = planes
            setattr(self, f"layer{i + 1}", nn.Sequential(*layers))
        self.fc = nn.Linear(512, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.maxpool(F.relu(self.bn1(self.conv1(x))))
        out = self.layer4(self.layer3(self.layer2(self.layer1(out))))
        return self.fc(F.adaptive_avg_pool2d(out, 1).flatten(1))


@register("resnet18_imagenet")
def resnet18_imagenet(num_classes: int = 10, in_channels: int = 3) -> nn.Module:
    """ResNet-18 for ImageNet-size inputs (torchvision layout)."""
    return ImageNetResNet([2, 2, 2, 2], num_classes, in_channels)


@register("resnet34_imagenet")
def resnet34_imagenet(num_classes: int = 10, in_channels: int = 3) -> nn.Module:
    """ResNet-34 for ImageNet-size inputs (torchvision layout)."""
    return ImageNetResNet([3, 4, 6, 3], num_classes, in_channels)


@register("resnet18_imagenet_noshort")
def resnet18_imagenet_noshort(num_classes: int = 10, in_channels: int = 3) -> nn.Module:
    """ResNet-18 for ImageNet-size inputs without skip connections."""
    return ImageNetResNet([2, 2, 2, 2], num_classes, in_channels, shortcut=False)


@register("resnet34_imagenet_noshort")
def resnet34_imagenet_noshort(num_classes: int = 10, in_channels: int = 3) -> nn.Module:
    """ResNet-34 for ImageNet-size inputs without skip connections."""
    return ImageNetResNet([3, 4, 6, 3], num_classes, in_channels, shortcut=False)
