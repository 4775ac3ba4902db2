"""The plane through a curve's ends and its bend, and the curve drawn in it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from landscape.connect.curve import Curve, coefficients
from landscape.errors import LandscapeError


def plane_directions(curve: Curve) -> tuple[list[dict[str, torch.Tensor]], tuple[float, float]]:
    """The plane through a, b and the bend, as two orthogonal directions of equal length from ``a``
    over the curve's parameters (Garipov et al.'s figures): x along ``b - a`` (b at (1, 0)), y along
    the bend's component orthogonal to it, so that distances and angles in the plane are true in
    units of ``|b - a|``. Returns the directions and the bend's coordinates ``(xb, yb)``, yb > 0."""
    names = list(curve.params)
    u = torch.cat([(curve.b[k] - curve.a[k]).double().ravel() for k in names])
    v = torch.cat([(curve.bend[k] - curve.a[k]).double().ravel() for k in names])
    uu = float(u @ u)
    if uu == 0.0:
        raise LandscapeError("the two ends are the same network: there is no plane through them")
    xb = float(v @ u) / uu
    w = v - xb * u
    if float(w @ w) <= 1e-24 * max(float(v @ v), uu):
        raise LandscapeError("the bend lies on the straight line between the ends (an untrained curve): "
                             "there is no plane through the three")
    yb = math.sqrt(float(w @ w) / uu)
    w = w / yb  # as long as b - a
    dx, dy, offset = {}, {}, 0
    for k in names:
        n = curve.a[k].numel()
        dx[k] = (curve.b[k] - curve.a[k]).float()
        dy[k] = w[offset:offset + n].reshape(curve.a[k].shape).float()
        offset += n
    return [dx, dy], (xb, yb)


@dataclass(frozen=True)
class PlanePath:
    """The curve and the straight line in the plane of :func:`plane_directions`: ``x``/``y`` of
    the curve at ``t``, and the points ``a`` (0, 0), ``b`` (1, 0) and ``bend``; ``curve_sha256``
    names the curve (a plane's surface file records it)."""

    t: np.ndarray
    x: np.ndarray
    y: np.ndarray
    a: tuple[float, float]
    b: tuple[float, float]
    bend: tuple[float, float]
    kind: str
    curve_sha256: str = ""


def plane_path(curve: Curve, points: int = 101) -> PlanePath:
    """The curve's coordinates in its plane (exact: theta(t) - a = c_bend (bend - a) + c_b (b - a))."""
    _, (xb, yb) = plane_directions(curve)
    ts = np.linspace(0.0, 1.0, points)
    cs = np.array([coefficients(curve.kind, t) for t in ts])
    x = cs[:, 2] + cs[:, 1] * xb
    y = cs[:, 1] * yb
    return PlanePath(ts, x, y, (0.0, 0.0), (1.0, 0.0), (xb, yb), curve.kind, curve.checksum())
