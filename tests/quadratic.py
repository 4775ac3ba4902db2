"""A model whose loss surface is known in closed form, for tests (imported as ``quadratic:...``).

A bias-free linear map ``y = W x`` under mean squared error: ``L(W) = mean_n ||W x_n - t_n||^2 / k``
is a quadratic in ``W``, so ``L(W0 + a D1 + b D2)`` can be written out with numpy alone.
"""

from __future__ import annotations

import torch

N, D, K = 64, 5, 3


def model() -> torch.nn.Module:
    return torch.nn.Linear(D, K, bias=False)


def data(split: str = "train") -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0 if split == "train" else 1)
    x = torch.randn(N, D, generator=g)
    t = x @ torch.randn(D, K, generator=g) + 0.1 * torch.randn(N, K, generator=g)
    return x, t


def classes(split: str = "train") -> tuple[torch.Tensor, torch.Tensor]:
    """The same inputs with integer labels, for cross-entropy."""
    x, t = data(split)
    return x, t.argmax(1)


def flat_linear() -> torch.nn.Module:
    """A linear classifier on flattened 3x32x32 images (CIFAR-shaped tests)."""
    return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3072, 10))
