"""A 2D surface interpolated onto a finer grid, for drawing only: the VTK export's ``--interp N``
(the original tool's ``h52vtp.py --interp``) and the contours of coarse grids.

Cubic where the grid allows it (4 or more points a side), else linear. A point that is not finite
(not computed, or overflowed) is never filled in: the fine points nearest to it (the half cell
around it, what a heat map shows as its cell) stay NaN; the cubic pass only borrows its finite
neighbours' mean there so the spline is defined."""

from __future__ import annotations

import numpy as np

from landscape.errors import LandscapeError
from landscape.io.surface_file import Surface, new_surface

MAX_POINTS_A_SIDE = 4096


def _filled(z: np.ndarray) -> np.ndarray:
    """``z`` with each non-finite point replaced by the mean of its finite neighbours (repeated
    until none is left; all zeros when nothing is finite)."""
    z = np.array(z, dtype=float)
    bad = ~np.isfinite(z)
    if bad.all():
        return np.zeros_like(z)
    while bad.any():
        padded = np.pad(np.where(bad, 0.0, z), 1)
        count = np.pad((~bad).astype(float), 1)
        sums = sum(padded[1 + dy:padded.shape[0] - 1 + dy, 1 + dx:padded.shape[1] - 1 + dx]
                   for dy in (-1, 0, 1) for dx in (-1, 0, 1))
        counts = sum(count[1 + dy:count.shape[0] - 1 + dy, 1 + dx:count.shape[1] - 1 + dx]
                     for dy in (-1, 0, 1) for dx in (-1, 0, 1))
        reach = bad & (counts > 0)
        z[reach] = sums[reach] / counts[reach]
        bad &= ~reach
    return z


def interpolate(x: np.ndarray, y: np.ndarray, z: np.ndarray, xi: np.ndarray, yi: np.ndarray) -> np.ndarray:
    """``z`` (meshgrid order, ``[j, i]`` at ``(x[i], y[j])``) at the points of the grid ``xi`` x ``yi``."""
    from scipy.interpolate import RegularGridInterpolator

    z = np.asarray(z, dtype=float)
    finite = np.isfinite(z)
    axes = (np.asarray(y, float), np.asarray(x, float))
    method = "cubic" if min(len(x), len(y)) >= 4 else "linear"
    yy, xx = np.meshgrid(yi, xi, indexing="ij")
    points = np.stack([yy.ravel(), xx.ravel()], axis=1)
    out = RegularGridInterpolator(axes, _filled(z), method=method)(points)
    if not finite.all():
        keep = RegularGridInterpolator(axes, finite.astype(float), method="nearest")(points) > 0.5
        out = np.where(keep, out, np.nan)
    return out.reshape(len(yi), len(xi))


def resample(surface: Surface, n: int) -> Surface:
    """``surface`` (2D) interpolated onto ``n x n`` points over the same extent; every stored array
    is interpolated, and the attributes say so (``interpolated_from``: the original grid)."""
    if surface.ndim != 2:
        raise LandscapeError(f"interpolation is for 2D surfaces; this one is {surface.ndim}D")
    if not 2 <= int(n) <= MAX_POINTS_A_SIDE:
        raise LandscapeError(f"the interpolated grid needs 2 to {MAX_POINTS_A_SIDE} points a side, got {n}")
    xi = np.linspace(surface.x[0], surface.x[-1], int(n))
    yi = np.linspace(surface.y[0], surface.y[-1], int(n))
    ny, nx = surface.shape
    out = new_surface([xi, yi], [], {**surface.attrs, "interpolated_from": f"{nx}x{ny}"})
    for name, v in surface.values.items():
        out.values[name] = interpolate(surface.x, surface.y, v, xi, yi)
        out.done[name] = np.isfinite(out.values[name])
    return out


__all__ = ["interpolate", "resample"]
