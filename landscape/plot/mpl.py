"""Matplotlib views of a surface. Each function takes an ``ax`` and returns what it drew.

Arrays are in meshgrid order (``[j, i]`` at ``(x[i], y[j])``), as matplotlib wants them.
Non-finite points (not computed yet, or where the loss overflowed) are masked, never drawn.

Levels and colours come from :func:`scale_for`: by default, a quantity that is positive and
spans more than two decades (a loss around a minimum) gets log-spaced levels, so the basin the
figure is about gets most of the contours; otherwise the levels are linear. Limits outside the
data, or non-positive limits on a log scale, are refused with a :class:`LandscapeError`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from matplotlib.axes import Axes
from matplotlib.colors import LogNorm, Normalize
from matplotlib.ticker import LogFormatterSciNotation, LogLocator, MaxNLocator

from landscape.errors import LandscapeError
from landscape.io.surface_file import LABELS, Surface
from landscape.plot.resample import interpolate

SCALES = ("auto", "linear", "log")
MAX_LEVELS = 1000  # more cannot be told apart, and cost minutes and gigabytes
AUTO_LOG_DECADES = 2.0  # a positive quantity spanning more than this many decades gets a log scale


def masked(values: np.ndarray) -> np.ma.MaskedArray:
    """``values`` with NaN and inf masked."""
    return np.ma.masked_invalid(np.asarray(values, dtype=float))


@dataclass(frozen=True)
class Scale:
    """Contour levels and the colour normalization that goes with them."""

    levels: np.ndarray
    log: bool

    @property
    def norm(self):
        return LogNorm(self.levels[0], self.levels[-1]) if self.log else Normalize(self.levels[0], self.levels[-1])

    @property
    def vmin(self) -> float:
        return float(self.levels[0])

    @property
    def vmax(self) -> float:
        return float(self.levels[-1])


def scale_for(z: np.ndarray, vmin: float | None = None, vmax: float | None = None, levels: int = 30,
              scale: str = "auto", step: float | None = None, name: str = "the quantity") -> Scale:
    """Levels over [vmin, vmax] (default: the finite data), linear or log-spaced (``scale``), or
    every ``step`` from vmin (the original tool's ``--vlevel``). Refuses what would draw nothing
    meaningful: no finite value, limits outside the data, non-positive limits on a log scale."""
    if scale not in SCALES:
        raise LandscapeError(f"scale must be one of {', '.join(SCALES)}, got {scale!r}")
    if step is None and not 2 <= int(levels) <= MAX_LEVELS:
        raise LandscapeError(f"the number of contour levels must be 2 to {MAX_LEVELS}, got {levels}")
    for label, v in (("lower", vmin), ("upper", vmax), ("step", step)):
        if v is not None and not np.isfinite(v):
            raise LandscapeError(f"the {label} limit must be a finite number, got {v}" if label != "step"
                                 else f"the level step must be a finite number, got {v}")
    z = np.asarray(z, dtype=float)
    finite = z[np.isfinite(z)]
    if not finite.size:
        raise LandscapeError(f"{name} has no finite value (nothing computed yet, or every point overflowed)")
    lo_data, hi_data = float(finite.min()), float(finite.max())
    if vmin is not None and vmax is not None and vmax <= vmin:
        raise LandscapeError(f"the upper limit ({vmax:g}) must be above the lower one ({vmin:g})")
    if vmax is not None and vmax < lo_data:
        raise LandscapeError(f"the upper limit {vmax:g} is below every value of {name} ({lo_data:.4g}..{hi_data:.4g})")
    if vmin is not None and vmin > hi_data:
        raise LandscapeError(f"the lower limit {vmin:g} is above every value of {name} ({lo_data:.4g}..{hi_data:.4g})")
    log = scale == "log"
    if scale == "auto":
        lo, hi = vmin if vmin is not None else lo_data, vmax if vmax is not None else hi_data
        log = step is None and lo > 0 and hi / lo > 10 ** AUTO_LOG_DECADES
    if log:
        for label, v in (("lower", vmin), ("upper", vmax)):
            if v is not None and v <= 0:
                raise LandscapeError(f"a log scale needs a positive {label} limit, got {v:g}")
        positive = finite[finite > 0]
        if not positive.size:
            raise LandscapeError(f"a log scale needs positive values; {name} has none")
        lo = vmin if vmin is not None else float(positive.min())
    else:
        lo = vmin if vmin is not None else lo_data
    hi = vmax if vmax is not None else hi_data
    if hi <= lo:  # a constant surface: a band around its value
        pad = abs(lo) * 1e-3 or 1e-3
        lo, hi = (lo / 1.01, hi * 1.01) if log else (lo - pad, hi + pad)
    if step is not None:
        if step <= 0:
            raise LandscapeError(f"the level step must be positive, got {step:g}")
        if (hi - lo) / step > 1000:
            raise LandscapeError(f"a level step of {step:g} gives {int((hi - lo) / step)} levels over {lo:g}..{hi:g}")
        lv = np.arange(lo, hi + step * 0.5, step)
        return Scale(lv if len(lv) > 1 else np.array([lo, lo + step]), log)
    lv = np.geomspace(lo, hi, int(levels)) if log else np.linspace(lo, hi, int(levels))
    return Scale(lv, log)


def log_ticks_(axis, lo: float, hi: float) -> None:
    """Readable ticks on a log ``axis`` showing ``lo..hi``: decades where the range spans several,
    else 1-2-5 or every digit, else (a range within a factor of ~2) five round linear values; short
    labels (``0.0135``, not ``1.38485x10^-2``), no labelled minor ticks."""
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullFormatter

    lo, hi = (float(lo), float(hi)) if lo <= hi else (float(hi), float(lo))
    ticks: list[float] = []
    for subs in ((1.0,), (1.0, 2.0, 5.0), tuple(float(k) for k in range(1, 10))):
        found = LogLocator(base=10, subs=subs).tick_values(lo, hi)
        ticks = [t for t in found if lo * (1 - 1e-9) <= t <= hi * (1 + 1e-9)]
        if len(ticks) >= 3:
            break
    if len(ticks) < 3:
        ticks = [t for t in MaxNLocator(5).tick_values(lo, hi) if lo <= t <= hi and t > 0]
    axis.set_major_locator(FixedLocator(ticks))
    decades = all(np.isclose(np.log10(t), round(np.log10(t))) for t in ticks)
    axis.set_major_formatter(LogFormatterSciNotation() if decades else FuncFormatter(lambda v, _: f"{v:.3g}"))
    axis.set_minor_formatter(NullFormatter())


def colorbar(fig, artist, ax, label: str, scale: Scale | None = None, match_height: bool = True, **kwargs):
    """A labelled colour bar with round ticks. With ``match_height`` it sits in its own axes beside
    ``ax``, exactly as tall as it (also for equal-aspect axes)."""
    log = scale.log if scale is not None else isinstance(getattr(artist, "norm", None), LogNorm)
    if match_height and isinstance(ax, Axes):
        cax = ax.inset_axes([1.04, 0.0, 0.05, 1.0])
        cbar = fig.colorbar(artist, cax=cax, **kwargs)
    else:
        cbar = fig.colorbar(artist, ax=ax, **kwargs)
    cbar.set_label(f"{label} (log scale)" if log else label)
    if log:
        lo, hi = (scale.vmin, scale.vmax) if scale is not None else (artist.norm.vmin, artist.norm.vmax)
        cbar.ax.yaxis.set_minor_locator(LogLocator(base=10, subs="auto"))
        log_ticks_(cbar.ax.yaxis, lo, hi)
    else:
        cbar.ax.yaxis.set_major_locator(MaxNLocator(7))
    return cbar


def _axes_labels(ax, surface: Surface) -> None:
    ax.set_xlabel("x")
    ax.set_ylabel("y")


def _z(surface: Surface, quantity: str, log: bool) -> np.ma.MaskedArray:
    if surface.ndim != 2:
        raise LandscapeError(f"this view needs a 2D surface; this one is {surface.ndim}D")
    z = masked(surface.quantity(quantity))
    return np.ma.masked_less_equal(z, 0) if log else z


COARSE = 16  # grids with fewer points a side are contoured from a finer interpolation
DRAWN_POINTS = 121  # points a side of that interpolation


def drawn(surface: Surface, quantity: str, log: bool) -> tuple[np.ndarray, np.ndarray, np.ma.MaskedArray]:
    """``(x, y, z)`` to contour. On a coarse grid (4 to 15 points a side) contours of the raw points
    are polygons with corners at the grid (stars around a minimum, where log levels crowd), so
    the surface is interpolated onto ``DRAWN_POINTS`` a side first: cubic (exact for a quadratic
    bowl), its overshoot kept above half the minimum (positive on a log scale, and below the lowest
    level, so no level is drawn around a clipped plateau); points that are not finite are never
    filled in (:func:`landscape.plot.resample.interpolate`)."""
    z = _z(surface, quantity, log)
    x, y = surface.x, surface.y
    if not 4 <= min(len(x), len(y)) < COARSE or z.count() < 2:
        return x, y, z

    xi, yi = np.linspace(x[0], x[-1], DRAWN_POINTS), np.linspace(y[0], y[-1], DRAWN_POINTS)
    zi = interpolate(x, y, z.filled(np.nan), xi, yi)
    lo, hi = float(z.min()), float(z.max())
    floor = lo / 2 if lo > 0 else lo - 0.1 * (hi - lo)  # an overshoot dips below the lowest level, smoothly
    with np.errstate(invalid="ignore"):
        zi = np.clip(zi, floor, hi)
    return xi, yi, masked(zi)


def resolved_floor(surface: Surface, quantity: str) -> float:
    """The lowest value a coarse grid resolves as a closed contour: the smallest value next to its
    minimum. Levels between the minimum and it would circle one grid cell, so their shape would be
    the interpolation's invention (the star-shaped polygons of raw contours); they are not drawn."""
    z = np.asarray(surface.quantity(quantity), dtype=float)
    if not np.isfinite(z).any():
        return -np.inf
    j, i = np.unravel_index(int(np.nanargmin(np.where(np.isfinite(z), z, np.nan))), z.shape)
    near = z[max(j - 1, 0):j + 2, max(i - 1, 0):i + 2].copy()
    near[min(j, 1), min(i, 1)] = np.nan
    near = near[np.isfinite(near)]
    return float(near.min()) if near.size else -np.inf


def mark_missing(ax: Axes, surface: Surface, quantity: str = "loss"):
    """Hatch the cells of the points whose value is not finite (not computed, or overflowed), so a
    hole in a figure reads as one. Returns the artist, or None when every point is finite."""
    from matplotlib.collections import PatchCollection
    from matplotlib.patches import Rectangle

    z = np.asarray(surface.quantity(quantity), dtype=float)
    bad = ~np.isfinite(z)
    if not bad.any():
        return None
    x, y = surface.x, surface.y

    def edges(c: np.ndarray) -> np.ndarray:  # cell edges half-way between points, clipped to the grid
        mid = (c[1:] + c[:-1]) / 2 if len(c) > 1 else np.array([])
        return np.concatenate([[c[0]], mid, [c[-1]]])

    ex, ey = edges(x), edges(y)
    rows, cols = np.nonzero(bad)
    cells = [Rectangle((ex[i], ey[j]), ex[i + 1] - ex[i], ey[j + 1] - ey[j]) for j, i in zip(rows, cols, strict=True)]
    art = PatchCollection(cells, facecolor="0.92", edgecolor="0.45", hatch="///", linewidth=0, zorder=3,
                          label=f"not finite ({int(bad.sum())} points)")
    ax.add_collection(art, autolim=False)
    return art


def missing_handle(art):
    """A legend entry for what :func:`mark_missing` drew (a mesh has none of its own)."""
    from matplotlib.patches import Patch

    return Patch(facecolor="white", edgecolor="0.5", hatch="///", label=art.get_label())


def mark_models(ax: Axes, surface: Surface) -> list:
    """On the plane through three models (``--model2`` and ``--model3``: the model at (0, 0), the
    second at (1, 0), the third at (0, 1)), a labelled marker at each. Returns the markers."""
    names = ("model", "model2", "model3")
    out = []
    for (px, py), name, marker in zip(((0, 0), (1, 0), (0, 1)), names, ("o", "s", "^"), strict=True):
        path = str(surface.attrs.get(name) or name)
        label = path.rsplit("/", 1)[-1]
        (m,) = ax.plot([px], [py], marker, ms=8, mfc="white", mec="red", mew=1.5, zorder=6)
        ax.annotate(label, (px, py), xytext=(6, 6), textcoords="offset points", fontsize=7, color="red", zorder=6,
                    bbox={"boxstyle": "round,pad=0.15", "fc": "white", "ec": "none", "alpha": 0.8})
        out.append(m)
    return out


def surface_scale(surface: Surface, quantity: str, levels: int = 30, vmin: float | None = None,
                  vmax: float | None = None, scale: str = "auto", step: float | None = None) -> Scale:
    """:func:`scale_for` of a surface's quantity; ``auto`` may choose log only for a loss."""
    if scale == "auto" and not surface.key(quantity).endswith("loss"):
        scale = "linear"
    return scale_for(surface.quantity(quantity), vmin, vmax, int(levels), scale, step, surface.label(quantity))


def _scale(surface: Surface, quantity: str, levels, vmin, vmax, scale, step) -> Scale:
    if isinstance(levels, Scale):
        return levels
    if not np.isscalar(levels):
        lv = np.asarray(levels, dtype=float)
        return Scale(lv, scale == "log")
    return surface_scale(surface, quantity, int(levels), vmin, vmax, scale, step)


def plot_1d(ax: Axes, surface: Surface, quantity: str = "loss", scale: str = "linear", acc: bool = True,
            label: str | None = None, vmin: float | None = None, vmax: float | None = None,
            xlim: tuple[float, float] | None = None, color: str = "b"):
    """A 1D quantity along x (left axis) and, for a loss, the accuracy of its split (right axis,
    dashed). ``quantity="loss"`` on a file with several splits draws each split's loss and accuracy,
    one colour per split, with a legend. ``vmin``/``vmax`` limit the left axis, ``xlim`` the x
    range. Returns ``(line, acc_line)`` of ``quantity``."""
    if surface.ndim != 1:
        raise LandscapeError(f"a 1D view needs a 1D surface; this one is {surface.ndim}D")
    if xlim is not None and (xlim[1] <= surface.x.min() or xlim[0] >= surface.x.max()):
        raise LandscapeError(f"the x range {xlim[0]:g}:{xlim[1]:g} lies outside the data "
                             f"({surface.x.min():g}..{surface.x.max():g}): the figure would be empty")
    key = surface.key(quantity)
    keys = [key]
    if quantity == "loss":  # every split's loss, the first one's first
        keys += [k for k in surface.values if k.endswith("_loss") and k != key and np.isfinite(surface.values[k]).any()]
    several = len(keys) > 1
    colors = [color, "darkorange", "green", "purple"] if several else [color]
    sc = scale_for(np.concatenate([surface.quantity(k) for k in keys]), vmin, vmax, 2, scale,
                   name=surface.label(quantity))
    twin = None
    first = (None, None)
    for n, (k, c) in enumerate(zip(keys, colors, strict=False)):
        split = k[: -len("_loss")]
        (line,) = ax.plot(surface.x, masked(surface.quantity(k)), "-", color=c, lw=2,
                          label=f"{split} loss" if several else label or surface.label(quantity))
        acc_line = None
        acc_key = k[: -len("loss")] + "acc" if k.endswith("loss") else None
        if acc and acc_key in surface.values and np.isfinite(surface.values[acc_key]).any():
            twin = twin or ax.twinx()
            (acc_line,) = twin.plot(surface.x, masked(surface.values[acc_key]), "--", color=c if several else "r",
                                    lw=1.5, label=f"{split} accuracy" if several else "accuracy")
            twin.set_ylabel(LABELS["acc"] if several else surface.label(acc_key), color="k" if several else "r")
            twin.set_ylim(0, 100)
        if n == 0:
            first = (line, acc_line)
    ax.set_xlabel("x")
    ax.set_ylabel(LABELS["loss"] if several else surface.label(quantity), color="k" if several else color)
    if sc.log:
        ax.set_yscale("log")
    if vmin is not None or vmax is not None:
        ax.set_ylim(sc.vmin, sc.vmax)
    if sc.log:
        log_ticks_(ax.yaxis, *ax.get_ylim())
    if xlim is not None:
        ax.set_xlim(*xlim)
    if several:
        handles = ax.get_lines() + (twin.get_lines() if twin else [])
        ax.legend(handles=handles, fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=2,
                  frameon=False)  # below the axes: curves fill both axes' whole height
    return first


def contour(ax: Axes, surface: Surface, quantity: str = "loss", levels: int | np.ndarray | Scale = 30,
            vmin: float | None = None, vmax: float | None = None, scale: str = "auto", step: float | None = None,
            labels: bool = True, cmap: str = "viridis"):
    """Contour lines of a 2D surface (a coarse grid's from an interpolation: :func:`drawn`).
    Returns the ``QuadContourSet``."""
    sc = _scale(surface, quantity, levels, vmin, vmax, scale, step)
    x, y, z = drawn(surface, quantity, sc.log)
    lv = sc.levels
    if z.shape != surface.shape:  # a coarse grid, interpolated: no line below what it resolves
        floor = resolved_floor(surface, quantity)
        below, above = lv[lv < floor], lv[lv >= floor]
        if len(below) and len(above) >= 2:
            z = np.ma.maximum(z, (below[-1] + above[0]) / 2)  # between two levels: neither is drawn there
            raw = np.asarray(surface.quantity(quantity), dtype=float)
            j, i = np.unravel_index(int(np.nanargmin(np.where(np.isfinite(raw), raw, np.nan))), raw.shape)
            ax.plot([surface.x[i]], [surface.y[j]], "x", color="k", ms=6, zorder=4)
            ax.annotate(f"min {raw[j, i]:.3g}", (surface.x[i], surface.y[j]), xytext=(5, -10),
                        textcoords="offset points", fontsize=7, zorder=5,
                        bbox={"boxstyle": "round,pad=0.15", "fc": "white", "ec": "none", "alpha": 0.8})
    cs = ax.contour(x, y, z, levels=lv, cmap=cmap, norm=sc.norm)
    if labels and len(cs.levels):
        ax.clabel(cs, cs.levels[::5], inline=True, inline_spacing=2, fontsize=7, fmt="%.3g", colors="k")
    _axes_labels(ax, surface)
    ax.set_aspect("equal", adjustable="box")
    return cs


def contourf(ax: Axes, surface: Surface, quantity: str = "loss", levels: int | np.ndarray | Scale = 30,
             vmin: float | None = None, vmax: float | None = None, scale: str = "auto", step: float | None = None,
             cmap: str = "viridis"):
    """Filled contours of a 2D surface (a coarse grid's from an interpolation: :func:`drawn`).
    Returns the ``QuadContourSet``."""
    sc = _scale(surface, quantity, levels, vmin, vmax, scale, step)
    x, y, z = drawn(surface, quantity, sc.log)
    cs = ax.contourf(x, y, z, levels=sc.levels, cmap=cmap, norm=sc.norm, extend="both")
    _axes_labels(ax, surface)
    ax.set_aspect("equal", adjustable="box")
    return cs


def evaluated_points(ax: Axes, surface: Surface, quantity: str = "loss", size: float = 3.0, color: str = "k"):
    """Mark the points where an adaptive surface evaluated the network (its other points are
    interpolated). Returns the ``PathCollection``, or None for a surface without an ``evaluated`` mask."""
    mask = surface.arrays.get("evaluated")
    if mask is None:
        return None
    mask = np.asarray(mask).astype(bool)
    if surface.ndim == 1:
        return ax.scatter(surface.x[mask], np.asarray(surface.quantity(quantity))[mask], s=size, c=color, zorder=3,
                          label="evaluated")
    xx, yy = np.meshgrid(surface.x, surface.y)
    return ax.scatter(xx[mask], yy[mask], s=size, c=color, marker=".", linewidths=0, zorder=3, label="evaluated")


def heatmap(ax: Axes, surface: Surface, quantity: str = "loss", vmin: float | None = None,
            vmax: float | None = None, scale: str = "auto", cmap: str = "viridis", levels: Scale | None = None):
    """A heat map of a 2D surface (cells centred on the grid points). Returns the ``QuadMesh``."""
    sc = levels if isinstance(levels, Scale) else surface_scale(surface, quantity, 2, vmin, vmax, scale)
    z = _z(surface, quantity, sc.log)
    mesh = ax.pcolormesh(surface.x, surface.y, z, shading="nearest", cmap=cmap, norm=sc.norm)
    _axes_labels(ax, surface)
    ax.set_aspect("equal", adjustable="box")
    return mesh


def surface3d(ax, surface: Surface, quantity: str = "loss", vmin: float | None = None,
              vmax: float | None = None, scale: str = "auto", cmap: str = "viridis"):
    """A 3D surface on an ``Axes3D`` (``projection="3d"``). Returns the ``Poly3DCollection``.

    Masked points are drawn as holes; values above ``vmax`` are clipped to it, so a single
    exploding point does not flatten the whole picture. On a log scale the height is log10.
    """
    sc = surface_scale(surface, quantity, 2, vmin, vmax, scale)
    z = _z(surface, quantity, sc.log)
    zz = np.ma.clip(z, sc.vmin, sc.vmax)
    if sc.log:
        zz = np.ma.log10(zz)
    xx, yy = np.meshgrid(surface.x, surface.y)
    filled = zz.filled(np.nan)
    art = ax.plot_surface(xx, yy, filled, cmap=cmap, linewidth=0, antialiased=True,
                          norm=Normalize(np.nanmin(filled), np.nanmax(filled)))
    _axes_labels(ax, surface)
    label = surface.label(quantity)
    ax.set_zlabel(f"log10 {label}" if sc.log else label)
    for axis in (ax.xaxis, ax.yaxis, ax.zaxis):
        axis.set_major_locator(MaxNLocator(5))
    ax.tick_params(labelsize=8, pad=1)
    return art
