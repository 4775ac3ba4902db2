"""Two-parameter modules whose loss surface is a closed form: a bowl with one narrow feature (a dip,
a spike or a ridge), for the adaptive grids' tests and ``benchmarks/bench_adaptive.py``.

On the grid ``[-1, 1]^2`` with the directions ``(1, 0)`` and ``(0, 1)`` (:func:`directions`), the
module's loss at ``(x, y)`` is :func:`height`; ``sigma`` is the feature's width (the standard
deviation of its Gaussian profile), ``STEP`` the step of a 41-point axis.
"""

from __future__ import annotations

import math

import torch

KINDS = ("dip", "spike", "ridge")
STEP = 0.05  # the grid step of a 41-point axis over [-1, 1]


def height(kind: str, x, y, center=(0.3, -0.2), angle: float = 0.6, sigma: float = 2 * STEP, exp=None):
    """The surface at ``(x, y)`` (floats, numpy arrays or tensors; ``exp`` their exponential): the
    bowl ``0.1 + x^2 + y^2 / 2`` with a dip 90 % deep, a spike 2 high, or a ridge 1 high along the
    line through ``center`` at ``angle``."""
    exp = exp or math.exp
    bowl = 0.1 + x * x + 0.5 * y * y
    cx, cy = center
    if kind == "ridge":
        d = (x - cx) * math.sin(angle) - (y - cy) * math.cos(angle)
        return bowl + exp(-d * d / (2 * sigma * sigma))
    bump = exp(-((x - cx) ** 2 + (y - cy) ** 2) / (2 * sigma * sigma))
    if kind == "dip":
        return bowl * (1 - 0.9 * bump)
    if kind == "spike":
        return bowl + 2.0 * bump
    raise ValueError(kind)


class Bumps(torch.nn.Module):
    """A module with one parameter ``w`` of two entries whose output, for any batch, is
    :func:`height` at ``w`` (float64): with :func:`loss`, its loss surface."""

    def __init__(self, kind: str, center=(0.3, -0.2), angle: float = 0.6, sigma: float = 2 * STEP):
        super().__init__()
        self.kind, self.center, self.angle, self.sigma = kind, tuple(center), float(angle), float(sigma)
        self.w = torch.nn.Parameter(torch.zeros(2))

    def forward(self, x):
        w = self.w.double()
        h = height(self.kind, w[0], w[1], self.center, self.angle, self.sigma, exp=torch.exp)
        return h.expand(len(x))


def loss(output, batch):
    return output.mean()


def data() -> tuple[torch.Tensor, torch.Tensor]:
    return torch.zeros(2, 1), torch.zeros(2)


def directions() -> list[dict[str, torch.Tensor]]:
    return [{"w": torch.tensor([1.0, 0.0])}, {"w": torch.tensor([0.0, 1.0])}]
