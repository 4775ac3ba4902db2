"""Small networks for the built-in demo (scikit-learn digits, 1x8x8), MNIST and tests."""

from __future__ import annotations

from torch import nn

from landscape.models.registry import register


class DigitsNet(nn.Module):
    """A small conv net with BatchNorm for 8x8 digits: the built-in demo's network."""

    def __init__(self, num_classes: int = 10, in_channels: int = 1, width: int = 16):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, width, 3, padding=1, bias=False),
            nn.BatchNorm2d(width),
            nn.ReLU(inplace=True),
            nn.Conv2d(width, 2 * width, 3, padding=1, bias=False),
            nn.BatchNorm2d(2 * width),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2),
            nn.Conv2d(2 * width, 2 * width, 3, padding=1, bias=False),
            nn.BatchNorm2d(2 * width),
            nn.ReLU(inplace=True),
            nn.AdaptiveAvgPool2d(1),
        )
        self.fc = nn.Linear(2 * width, num_classes)

    def forward(self, x):
        return self.fc(self.features(x).flatten(1))


@register("digits_cnn")
def digits_cnn(num_classes: int = 10, in_channels: int = 1) -> nn.Module:
    return DigitsNet(num_classes, in_channels)


class MLP(nn.Module):
    """A fully connected ReLU net on flattened ``in_channels x input_size x input_size`` images."""

    def __init__(
        self,
        num_classes: int = 10,
        in_channels: int = 1,
        input_size: int = 8,
        hidden: tuple[int, ...] = (128, 128),
    ):
        super().__init__()
        layers: list[nn.Module] = [nn.Flatten()]
        width = in_channels * input_size * input_size
        for h in hidden:
            layers += [nn.Linear(width, h), nn.ReLU(inplace=True)]
            width = h
        layers.append(nn.Linear(width, num_classes))
        self.net = nn.Sequential(*layers)

    def forward(self, x):
        return self.net(x)


class LeNet(nn.Module):
    """LeNet-5 style: conv5x5(6, pad 2)-pool-conv5x5(16)-pool-120-84-classes, ReLU activations.

    Takes 28x28 (MNIST) and 32x32 inputs; the 16 maps are pooled to 5x5 either way.
    """

    def __init__(self, num_classes: int = 10, in_channels: int = 1):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 6, 5, padding=2),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2),
            nn.Conv2d(6, 16, 5),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2),
            nn.AdaptiveAvgPool2d(5),
        )
        self.classifier = nn.Sequential(
            nn.Linear(16 * 5 * 5, 120),
            nn.ReLU(inplace=True),
            nn.Linear(120, 84),
            nn.ReLU(inplace=True),
            nn.Linear(84, num_classes),
        )

    def forward(self, x):
        return self.classifier(self.features(x).flatten(1))


@register("mlp")
def mlp(num_classes: int = 10, in_channels: int = 1) -> nn.Module:
    """Two hidden layers of 128 on 8x8 inputs (scikit-learn digits)."""
    return MLP(num_classes, in_channels, input_size=8)


@register("mlp_mnist")
def mlp_mnist(num_classes: int = 10, in_channels: int = 1) -> nn.Module:
    """Two hidden layers of 128 on 28x28 inputs (MNIST)."""
    return MLP(num_classes, in_channels, input_size=28)


@register("lenet")
def lenet(num_classes: int = 10, in_channels: int = 1) -> nn.Module:
    """LeNet-5 style conv net for MNIST (28x28) or 32x32 inputs."""
    return LeNet(num_classes, in_channels)
