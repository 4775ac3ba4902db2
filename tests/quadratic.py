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


def with_hessian(H, noise: float = 0.1, seed: int = 0) -> tuple[torch.nn.Module, tuple[torch.Tensor, torch.Tensor]]:
    """A bias-free linear map ``R^n -> R`` at its least-squares minimizer, and data on which its
    mean squared error is ``L(w* + d) = L(w*) + 1/2 d^T H d`` exactly, for a given positive
    definite ``H`` (n x n, numpy): inputs ``X = sqrt(N / 2) Q H^(1/2)`` (``Q`` with orthonormal
    columns), so ``2 X^T X / N = H``."""
    import numpy as np

    H = np.asarray(H, dtype=np.float64)
    n = len(H)
    rng = np.random.default_rng(seed)
    samples = 4 * n
    Q, _ = np.linalg.qr(rng.standard_normal((samples, n)))
    w, V = np.linalg.eigh(H)
    X = np.sqrt(samples / 2) * Q @ (V * np.sqrt(w)) @ V.T
    t = X @ rng.standard_normal(n) + noise * rng.standard_normal(samples)
    model = torch.nn.Linear(n, 1, bias=False)
    with torch.no_grad():
        model.weight.copy_(torch.from_numpy(np.linalg.lstsq(X, t, rcond=None)[0]).view(1, n))
    return model, (torch.tensor(X, dtype=torch.float32), torch.tensor(t, dtype=torch.float32).view(-1, 1))
