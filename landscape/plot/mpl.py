"""Matplotlib views of a surface. Each function takes an ``ax`` and returns what it drew.

Non-finite points (not computed yet, or where the loss overflowed) are masked, never drawn.
Arrays are indexed ``[i, j] = (x[i], y[j])``; matplotlib wants rows along y, hence the ``.T``.
"""

from __future__ import annotations

import numpy as np
from matplotlib.axes import Axes
from matplotlib.colors import LogNorm, Normalize

from landscape.surface import Surface


def masked(values: np.ndarray) -> np.ma.MaskedArray:
    """``values`` with NaN and inf masked."""
    return np.ma.masked_invalid(np.asarray(values, dtype=float))


def levels_for(z: np.ndarray, vmin: float | None, vmax: float | None, n: int, log: bool) -> np.ndarray:
    """``n`` contour levels over [vmin, vmax] (default: the finite data range), log-spaced if ``log``."""
    finite = np.asarray(z, dtype=float)[np.isfinite(z)]
    if log:
        finite = finite[finite > 0]
    lo = vmin if vmin is not None else (finite.min() if finite.size else 0.0)
    hi = vmax if vmax is not None else (finite.max() if finite.size else 1.0)
    if hi <= lo:
        hi = lo + 1e-12 + abs(lo) * 1e-6
    return np.geomspace(max(lo, 1e-12), hi, n) if log else np.linspace(lo, hi, n)


def colorbar(fig, artist, ax, label: str, log: bool = False, **kwargs):
    """A colour bar for ``artist``; on a log scale, six labelled ticks across its range
    (matplotlib's default log ticks label only whole decades, often none or one)."""
    cbar = fig.colorbar(artist, ax=ax, label=label, **kwargs)
    if log:
        lo, hi = artist.norm.vmin, artist.norm.vmax
        cbar.set_ticks(np.geomspace(lo, hi, 6), labels=[f"{t:.3g}" for t in np.geomspace(lo, hi, 6)])
        cbar.minorticks_off()
    return cbar


def _norm(levels: np.ndarray, log: bool):
    return LogNorm(levels[0], levels[-1]) if log else Normalize(levels[0], levels[-1])


def _z(surface: Surface, quantity: str, log: bool) -> np.ma.MaskedArray:
    z = masked(surface.values[f"{surface.split}_{quantity}"])
    return np.ma.masked_less_equal(z, 0) if log else z


def plot_1d(ax: Axes, surface: Surface, log: bool = False, acc: bool = True, label: str | None = None):
    """Loss (left axis) and accuracy (right, dashed) along x. Returns ``(loss_line, acc_line)``."""
    x = surface.x
    (loss_line,) = ax.plot(x, masked(surface.loss), "b-", lw=2, label=label or "loss")
    ax.set_xlabel("x")
    ax.set_ylabel("loss", color="b")
    if log:
        ax.set_yscale("log")
    acc_line = None
    if acc and np.isfinite(surface.acc).any():
        twin = ax.twinx()
        (acc_line,) = twin.plot(x, masked(surface.acc), "r--", lw=1.5, label="accuracy")
        twin.set_ylabel("accuracy (%)", color="r")
        twin.set_ylim(0, 100)
    return loss_line, acc_line


def contour(ax: Axes, surface: Surface, quantity: str = "loss", levels: int | np.ndarray = 30,
            vmin: float | None = None, vmax: float | None = None, log: bool = False,
            labels: bool = True, cmap: str = "viridis"):
    """Contour lines of a 2D surface. Returns the ``QuadContourSet``."""
    z = _z(surface, quantity, log)
    lv = levels if not np.isscalar(levels) else levels_for(z.filled(np.nan), vmin, vmax, int(levels), log)
    cs = ax.contour(surface.x, surface.y, z.T, levels=lv, cmap=cmap, norm=_norm(np.asarray(lv), log))
    if labels:
        ax.clabel(cs, cs.levels[::3], inline=True, fontsize=7, fmt="%.3g", colors="k")  # every 3rd
    ax.set_xlabel("x")
    ax.set_ylabel("y")
    ax.set_aspect("equal", adjustable="box")
    return cs


def contourf(ax: Axes, surface: Surface, quantity: str = "loss", levels: int | np.ndarray = 30,
             vmin: float | None = None, vmax: float | None = None, log: bool = False, cmap: str = "viridis"):
    """Filled contours of a 2D surface. Returns the ``QuadContourSet``."""
    z = _z(surface, quantity, log)
    lv = levels if not np.isscalar(levels) else levels_for(z.filled(np.nan), vmin, vmax, int(levels), log)
    cs = ax.contourf(surface.x, surface.y, z.T, levels=lv, cmap=cmap, norm=_norm(np.asarray(lv), log),
                     extend="both")
    ax.set_xlabel("x")
    ax.set_ylabel("y")
    ax.set_aspect("equal", adjustable="box")
    return cs


def heatmap(ax: Axes, surface: Surface, quantity: str = "loss", vmin: float | None = None,
            vmax: float | None = None, log: bool = False, cmap: str = "viridis"):
    """A heat map of a 2D surface (cells centred on the grid points). Returns the ``QuadMesh``."""
    z = _z(surface, quantity, log)
    lv = levels_for(z.filled(np.nan), vmin, vmax, 2, log)
    mesh = ax.pcolormesh(surface.x, surface.y, z.T, shading="nearest", cmap=cmap, norm=_norm(lv, log))
    ax.set_xlabel("x")
    ax.set_ylabel("y")
    ax.set_aspect("equal", adjustable="box")
    return mesh


def surface3d(ax, surface: Surface, quantity: str = "loss", vmin: float | None = None,
              vmax: float | None = None, log: bool = False, cmap: str = "viridis"):
    """A 3D surface on an ``Axes3D`` (``projection="3d"``). Returns the ``Poly3DCollection``.

    Masked points are drawn as holes; values above ``vmax`` are clipped to it, so a single
    exploding point does not flatten the whole picture.
    """
    z = _z(surface, quantity, log)
    lv = levels_for(z.filled(np.nan), vmin, vmax, 2, log)
    zz = np.ma.clip(z, lv[0], lv[-1])
    if log:
        zz = np.ma.log10(zz)
    xx, yy = np.meshgrid(surface.x, surface.y, indexing="ij")
    art = ax.plot_surface(xx, yy, zz.filled(np.nan), cmap=cmap, linewidth=0, antialiased=True,
                          norm=Normalize(np.nanmin(zz.filled(np.nan)), np.nanmax(zz.filled(np.nan))))
    ax.set_xlabel("x")
    ax.set_ylabel("y")
    ax.set_zlabel(f"log10 {quantity}" if log else quantity)
    return art
