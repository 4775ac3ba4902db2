"""Networks for quantized training (Li et al., NIPS'17): BinaryConnect's MLP with BatchNorm."""

from __future__ import annotations

from torch import nn

from landscape.models.registry import register


class MLPBN(nn.Module):
    """Fully connected layers without bias, each followed by BatchNorm (ReLU between), the output
    layer too, as in BinaryConnect's MLP: with BatchNorm after every layer the network's function
    does not depend on the scale of any layer's binary weights."""

    def __init__(self, num_classes: int = 10, in_channels: int = 1, input_size: int = 8,
                 hidden: tuple[int, ...] = (32, 32)):
        super().__init__()
        layers: list[nn.Module] = [nn.Flatten()]
        width = in_channels * input_size * input_size
        for h in hidden:
            layers += [nn.Linear(width, h, bias=False), nn.BatchNorm1d(h), nn.ReLU(inplace=True)]
            width = h
        layers += [nn.Linear(width, num_classes, bias=False), nn.BatchNorm1d(num_classes)]
        self.net = nn.Sequential(*layers)

    def forward(self, x):
        return self.net(x)


@register("mlp_bn")
def mlp_bn(num_classes: int = 10, in_channels: int = 1) -> nn.Module:
    """Two hidden layers of 32 with BatchNorm after every layer, on 8x8 inputs (digits): small
    enough that binary weights cost accuracy there (``benchmarks/bench_quant.py``)."""
    return MLPBN(num_classes, in_channels, input_size=8)
