"""A 2D surface interpolated onto a finer grid, for drawing only: the VTK export's ``--interp N``
(the original tool's ``h52vtp.py --interp``) and the contours of coarse grids.

Cubic where the data allow it (4 or more points a side, every value finite), else linear; a NaN
(a point not computed, or overflowed) stays NaN over the cells that touch it, never filled in."""

from __future__ import annotations

import numpy as np

from landscape.errors import LandscapeError
from landscape.surface_file import Surface, new_surface

MAX_POINTS_A_SIDE = 4096


def interpolate(x: np.ndarray, y: np.ndarray, z: np.ndarray, xi: np.ndarray, yi: np.ndarray) -> np.ndarray:
    """``z`` (meshgrid order, ``[j, i]`` at ``(x[i], y[j])``) at the points of the grid ``xi`` x ``yi``."""
    from scipy.interpolate import RegularGridInterpolator

    z = np.asarray(z, dtype=float)
    finite = np.isfinite(z)
    method = "cubic" if finite.all() and min(len(x), len(y)) >= 4 else "linear"
    yy, xx = np.meshgrid(yi, xi, indexing="ij")
    points = np.stack([yy.ravel(), xx.ravel()], axis=1)
    data = np.where(finite, z, np.nan) if method == "linear" else z
    f = RegularGridInterpolator((np.asarray(y, float), np.asarray(x, float)), data, method=method)
    return f(points).reshape(len(yi), len(xi))


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
