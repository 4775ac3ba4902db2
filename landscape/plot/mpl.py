"""Matplotlib views of a surface. Each function takes an ``ax``, a surface and a
:class:`landscape.plot.style.Style`, and returns what it drew.

Arrays are in meshgrid order (``[j, i]`` at ``(x[i], y[j])``), as matplotlib wants them.
Non-finite points are masked, never drawn; :func:`mark_missing` hatches them, telling the points
not computed yet from those computed as inf or NaN.

Levels and colours come from :func:`scale_for`: the colours span the data (or ``vmin``..``vmax``)
and the contour levels are round values inside it (0.5, 1, 2, 5, ...), about as many as asked for.
By default a quantity that is positive and spans more than two decades (a loss around a minimum)
gets log-spaced levels, so the basin the figure is about gets most of the contours; otherwise
the levels are linear. Values beyond ``vmin``..``vmax`` take the colour bar's extensions (its
triangles), in every view. Limits outside the data are refused with a :class:`LandscapeError`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from matplotlib import colormaps
from matplotlib.axes import Axes
from matplotlib.cm import ScalarMappable
from matplotlib.colors import LogNorm, Normalize
from matplotlib.ticker import (
    FixedLocator,
    FuncFormatter,
    LogFormatterSciNotation,
    LogLocator,
    MaxNLocator,
    NullFormatter,
)

from landscape.errors import LandscapeError
from landscape.io.surface_file import DERIVED, LABELS, Surface
from landscape.plot.labels import axis_labels
from landscape.plot.resample import interpolate
from landscape.plot.style import DEFAULT_STYLE, Style

AUTO_LOG_DECADES = 2.0  # a positive quantity spanning more than this many decades gets a log scale
# round values within a decade, from few levels per decade to many: a log scale takes the set that
# gives about the number of levels asked for
MANTISSAS = ((1.0,), (1.0, 3.0), (1.0, 2.0, 5.0), (1.0, 1.5, 2.0, 3.0, 5.0, 7.0),
             (1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0),
             (1.0, 1.2, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0),
             tuple(round(1.0 + 0.1 * k, 1) for k in range(90)))
LINEAR_STEPS = (1.0, 2.0, 2.5, 5.0, 10.0)


def masked(values: np.ndarray) -> np.ma.MaskedArray:
    """``values`` with NaN and inf masked."""
    return np.ma.masked_invalid(np.asarray(values, dtype=float))


@dataclass(frozen=True)
class Scale:
    """Contour levels and the colour range that goes with them: the colours span ``lo``..``hi``
    (default: the outer levels), the levels lie inside; ``extend`` says which side of the range
    the data passes (``neither``, ``min``, ``max``, ``both``): those values take the colour bar's
    extension colours."""

    levels: np.ndarray
    log: bool
    lo: float | None = None
    hi: float | None = None
    extend: str = "neither"

    @property
    def vmin(self) -> float:
        return float(self.levels[0] if self.lo is None else self.lo)

    @property
    def vmax(self) -> float:
        return float(self.levels[-1] if self.hi is None else self.hi)

    @property
    def norm(self):
        return LogNorm(self.vmin, self.vmax) if self.log else Normalize(self.vmin, self.vmax)

    @property
    def bands(self) -> np.ndarray:
        """The boundaries of filled contours: the levels, and the ends of the colour range."""
        inner = self.levels[(self.levels > self.vmin) & (self.levels < self.vmax)]
        return np.concatenate([[self.vmin], inner, [self.vmax]])


def _clean(values) -> np.ndarray:
    """Round values without the binary noise of their arithmetic (0.30000000000000004 -> 0.3)."""
    return np.array(sorted({float(f"{v:.10g}") for v in values}))


def round_levels(lo: float, hi: float, count: int, log: bool) -> np.ndarray:
    """About ``count`` round values within ``[lo, hi]`` (at least two): multiples of 1, 2, 2.5 or 5
    times a power of ten on a linear scale; 1-3-10, 1-2-5, every digit, ... per decade on a log one."""
    lo, hi = float(lo), float(hi)
    tol = 1e-9 * max(abs(lo), abs(hi), 1e-300)
    if log and lo > 0:
        e0, e1 = math.floor(math.log10(lo)), math.ceil(math.log10(hi))
        candidates = []
        for every in (10, 5, 3, 2):  # many decades: one level every few decades
            candidates.append([10.0**e for e in range(e0, e1 + 1) if e % every == 0])
        for m in MANTISSAS:
            candidates.append([mm * 10.0**e for e in range(e0, e1 + 1) for mm in m])
        best = None
        for cand in candidates:
            inside = _clean(v for v in cand if lo - tol <= v <= hi + tol)
            if len(inside) >= 2 and (best is None or abs(math.log(len(inside) / count))
                                     < abs(math.log(len(best) / count))):
                best = inside
        if best is not None:
            return best
    for bins in range(max(1, count - 1), max(1, count - 1) + 50):  # a narrow range: linear round values
        ticks = MaxNLocator(nbins=bins, steps=list(LINEAR_STEPS)).tick_values(lo, hi)
        inside = _clean(t for t in ticks if lo - tol <= t <= hi + tol and (t > 0 or not log))
        if len(inside) >= 2:
            return inside
    return np.array([lo, hi])


def scale_for(z: np.ndarray, style: Style = DEFAULT_STYLE, name: str = "the quantity", auto_log: bool = True,
              floor: float | None = None) -> Scale:
    """The scale of the values ``z``: colours over ``style.vmin``..``style.vmax`` (default: the finite
    data), linear or log (``style.scale``; ``auto``: log for positive values over more than two
    decades, where ``auto_log``), round levels inside, or one every ``style.step`` from the lower
    end. ``floor``: the lowest value the grid resolves (:func:`resolved_floor`); below it nothing is
    contoured and the colours start there. Refuses what would draw nothing meaningful: no finite
    value, limits outside the data, a log scale of values none of which is positive."""
    z = np.asarray(z, dtype=float)
    finite = z[np.isfinite(z)]
    if not finite.size:
        raise LandscapeError(f"{name} has no finite value (nothing computed yet, or every point overflowed)")
    lo_data, hi_data = float(finite.min()), float(finite.max())
    vmin, vmax = style.vmin, style.vmax
    if vmax is not None and vmax < lo_data:
        raise LandscapeError(f"the upper limit {vmax:g} is below every value of {name} ({lo_data:.4g}..{hi_data:.4g})")
    if vmin is not None and vmin > hi_data:
        raise LandscapeError(f"the lower limit {vmin:g} is above every value of {name} ({lo_data:.4g}..{hi_data:.4g})")
    log = style.scale == "log"
    if style.scale == "auto" and auto_log:
        lo, hi = vmin if vmin is not None else lo_data, vmax if vmax is not None else hi_data
        log = style.step is None and lo > 0 and hi / lo > 10**AUTO_LOG_DECADES
    if log:
        positive = finite[finite > 0]
        if not positive.size:
            raise LandscapeError(f"a log scale needs positive values; {name} has none")
        lo = vmin if vmin is not None else float(positive.min())
    else:
        lo = vmin if vmin is not None else lo_data
    hi = vmax if vmax is not None else hi_data
    if vmin is None and floor is not None and lo < floor < hi:
        lo = floor
    if hi <= lo:  # a constant surface: a band around its value
        pad = abs(lo) * 1e-3 or 1e-3
        lo, hi = (lo / 1.01, hi * 1.01) if log else (lo - pad, hi + pad)
    below, above = bool((finite < lo * (1 - 1e-9) - 1e-300).any()), bool((finite > hi * (1 + 1e-9)).any())
    extend = {(False, False): "neither", (True, False): "min", (False, True): "max", (True, True): "both"}[
        (below, above)]
    if style.step is not None:
        if (hi - lo) / style.step > 1000:
            raise LandscapeError(f"a level step of {style.step:g} gives {int((hi - lo) / style.step)} levels over "
                                 f"{lo:g}..{hi:g}")
        lv = np.arange(lo, hi + style.step * 0.5, style.step)
        lv = lv if len(lv) > 1 else np.array([lo, lo + style.step])
        return Scale(lv, log, extend=extend)
    return Scale(round_levels(lo, hi, style.levels, log), log, lo, hi, extend)


def level_text(value: float) -> str:
    """A round level as it is written: ``0.05``, ``2``, ``150``, ``1e-05``."""
    if value == 0:
        return "0"
    if 1e-4 <= abs(value) < 1e5:
        return np.format_float_positional(float(f"{value:.6g}"), trim="-")
    return f"{value:.3g}"


def log_ticks_(axis, lo: float, hi: float) -> None:
    """Readable ticks on a log ``axis`` showing ``lo..hi``: decades where the range spans several,
    else 1-2-5 or every digit, else (a range within a factor of ~2) five round linear values; short
    labels (``0.0135``, not ``1.38485x10^-2``), no labelled minor ticks."""
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
    """A labelled colour bar with round ticks over the scale's colour range, with the extension
    triangles where the data passes it (those values take their colours). For contour lines it
    shows the lines drawn, and only those. With ``match_height`` it sits in its own axes beside
    ``ax``, exactly as tall as it (also for equal-aspect axes)."""
    log = scale.log if scale is not None else isinstance(getattr(artist, "norm", None), LogNorm)
    lines = getattr(artist, "filled", True) is False
    mappable = artist
    if scale is not None and (lines or not hasattr(artist, "levels")):
        mappable = ScalarMappable(norm=scale.norm, cmap=artist.get_cmap())
        kwargs.setdefault("extend", scale.extend)
    if match_height and isinstance(ax, Axes):
        cax = ax.inset_axes([1.04, 0.0, 0.05, 1.0])
        cbar = fig.colorbar(mappable, cax=cax, **kwargs)
    else:
        cbar = fig.colorbar(mappable, ax=ax, **kwargs)
    if lines and scale is not None:  # the levels drawn, and only those, as lines across the bar
        n = len(artist.levels)
        cbar.add_lines(artist.levels, ["k"] * n, [0.5] * n)
    cbar.set_label(f"{label} (log scale)" if log else label)
    lo, hi = (scale.vmin, scale.vmax) if scale is not None else (artist.norm.vmin, artist.norm.vmax)
    if log:
        cbar.ax.yaxis.set_minor_locator(LogLocator(base=10, subs="auto"))
        log_ticks_(cbar.ax.yaxis, lo, hi)
    else:
        tol = 1e-9 * abs(hi - lo)
        ticks = [t for t in MaxNLocator(7).tick_values(lo, hi) if lo - tol <= t <= hi + tol]
        cbar.ax.yaxis.set_major_locator(FixedLocator(ticks))  # none in the extension triangles
    return cbar


def label_axes_(ax, surface: Surface) -> None:
    """Name the axes after the directions they are (:func:`landscape.plot.labels.axis_labels`)."""
    names = axis_labels(surface)
    ax.set_xlabel(names[0])
    if len(names) > 1:
        ax.set_ylabel(names[1])


def _z(surface: Surface, quantity: str, log: bool) -> np.ma.MaskedArray:
    if surface.ndim != 2:
        raise LandscapeError(f"this view needs a 2D surface; this one is {surface.ndim}D")
    z = masked(surface.quantity(quantity))
    return np.ma.masked_less_equal(z, 0) if log else z


COARSE = 16  # grids with fewer points a side are contoured from a finer interpolation
DRAWN_POINTS = 121  # points a side of that interpolation


def is_coarse(surface: Surface) -> bool:
    """Whether :func:`drawn` contours ``surface`` from an interpolation (4 to 15 points a side)."""
    return surface.ndim == 2 and 4 <= min(len(surface.x), len(surface.y)) < COARSE


def drawn(surface: Surface, quantity: str, log: bool) -> tuple[np.ndarray, np.ndarray, np.ma.MaskedArray]:
    """``(x, y, z)`` to contour. On a coarse grid (4 to 15 points a side) contours of the raw points
    are polygons with corners at the grid (stars around a minimum, where log levels crowd), so
    the surface is interpolated onto ``DRAWN_POINTS`` a side first: cubic (exact for a quadratic
    bowl), its overshoot kept above half the minimum (positive on a log scale, and below the lowest
    level, so no level is drawn around a clipped plateau); points that are not finite are never
    filled in (:func:`landscape.plot.resample.interpolate`)."""
    z = _z(surface, quantity, log)
    x, y = surface.x, surface.y
    if not is_coarse(surface) or z.count() < 2:
        return x, y, z

    xi, yi = np.linspace(x[0], x[-1], DRAWN_POINTS), np.linspace(y[0], y[-1], DRAWN_POINTS)
    zi = interpolate(x, y, z.filled(np.nan), xi, yi)
    lo, hi = float(z.min()), float(z.max())
    floor = lo / 2 if lo > 0 else lo - 0.1 * (hi - lo)  # an overshoot dips below the lowest level, smoothly
    with np.errstate(invalid="ignore"):
        zi = np.clip(zi, floor, hi)
    return xi, yi, masked(zi)


def resolved_floor(surface: Surface, quantity: str) -> float | None:
    """The lowest value a coarse grid resolves as a closed contour: the smallest value next to its
    minimum. Levels between the minimum and it would circle one grid cell, so their shape would be
    the interpolation's invention (the star-shaped polygons of raw contours); they are not drawn,
    and the colours start there. None for a grid that is not coarse."""
    if not is_coarse(surface):
        return None
    z = np.asarray(surface.quantity(quantity), dtype=float)
    if not np.isfinite(z).any():
        return None
    j, i = np.unravel_index(int(np.nanargmin(np.where(np.isfinite(z), z, np.nan))), z.shape)
    near = z[max(j - 1, 0):j + 2, max(i - 1, 0):i + 2].copy()
    near[min(j, 1), min(i, 1)] = np.nan
    near = near[np.isfinite(near)]
    return float(near.min()) if near.size else None


def mark_minimum(ax: Axes, surface: Surface, quantity: str):
    """A cross and the value at the grid's lowest point (for coarse grids, whose colours start above it)."""
    raw = np.asarray(surface.quantity(quantity), dtype=float)
    j, i = np.unravel_index(int(np.nanargmin(np.where(np.isfinite(raw), raw, np.nan))), raw.shape)
    (m,) = ax.plot([surface.x[i]], [surface.y[j]], "x", color="k", ms=6, zorder=4)
    ax.annotate(f"min {raw[j, i]:.3g}", (surface.x[i], surface.y[j]), xytext=(5, -10),
                textcoords="offset points", fontsize=7, zorder=5,
                bbox={"boxstyle": "round,pad=0.15", "fc": "white", "ec": "none", "alpha": 0.8})
    return m


def missing_points(surface: Surface, quantity: str) -> tuple[np.ndarray, np.ndarray]:
    """Two masks of the points without a finite value of ``quantity``: those not computed yet (an
    unfinished file) and those computed as inf or NaN (the loss overflowed)."""
    z = np.asarray(surface.quantity(quantity), dtype=float)
    bad = ~np.isfinite(z)
    key = surface.key(quantity)
    needs = DERIVED[key][0] if key in DERIVED and key not in surface.values else (key,)
    done = np.logical_and.reduce([np.asarray(surface.done[n], dtype=bool) if n in surface.done
                                  else np.ones(z.shape, bool) for n in needs])
    return bad & ~done, bad & done


def mark_missing(ax: Axes, surface: Surface, quantity: str = "loss") -> list:
    """Hatch the cells of the points without a finite value, so a hole in a figure reads as one:
    "not computed (N points)" where an unfinished file has no value yet, "not finite (N points)"
    where the value overflowed. Returns the artists drawn (none when every point is finite)."""
    from matplotlib.collections import PatchCollection
    from matplotlib.patches import Rectangle

    x, y = surface.x, surface.y

    def edges(c: np.ndarray) -> np.ndarray:  # cell edges half-way between points, clipped to the grid
        mid = (c[1:] + c[:-1]) / 2 if len(c) > 1 else np.array([])
        return np.concatenate([[c[0]], mid, [c[-1]]])

    ex, ey = edges(x), edges(y)
    out = []
    for mask, what, hatch, face in zip(missing_points(surface, quantity), ("not computed", "not finite"),
                                       ("...", "///"), ("white", "0.92"), strict=True):
        if not mask.any():
            continue
        rows, cols = np.nonzero(mask)
        cells = [Rectangle((ex[i], ey[j]), ex[i + 1] - ex[i], ey[j + 1] - ey[j])
                 for j, i in zip(rows, cols, strict=True)]
        art = PatchCollection(cells, facecolor=face, edgecolor="0.45", hatch=hatch, linewidth=0, zorder=3,
                              label=f"{what} ({int(mask.sum())} point{'s' if mask.sum() > 1 else ''})")
        ax.add_collection(art, autolim=False)
        out.append(art)
    return out


def missing_handle(art):
    """A legend entry for what :func:`mark_missing` drew (a mesh has none of its own)."""
    from matplotlib.patches import Patch

    return Patch(facecolor=art.get_facecolor()[0], edgecolor="0.5", hatch=art.get_hatch(), label=art.get_label())


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


def surface_scale(surface: Surface, style: Style = DEFAULT_STYLE, contoured: bool = True) -> Scale:
    """:func:`scale_for` of a surface's ``style.quantity``; ``auto`` may choose log only for a loss;
    the contours of a coarse grid start at what it resolves (:func:`resolved_floor`); a heat map
    (``contoured=False``) shows every point as it is."""
    q = style.quantity
    return scale_for(surface.quantity(q), style, surface.label(q), surface.key(q).endswith("loss"),
                     resolved_floor(surface, q) if contoured else None)


def _roundness(value: float, log: bool) -> tuple:
    """How round a level is, roundest first: fewer significant digits, then 1 before 5 before 2."""
    if value == 0:
        return (0, 0)
    mant = f"{abs(value):.6e}".split("e")[0].rstrip("0").rstrip(".")
    digits = len(mant.replace(".", ""))
    lead = {"1": 0, "5": 1, "2": 2}.get(mant[0], 3) if log or digits == 1 else 0
    return (digits, lead)


LABEL_GAP = 0.16  # the least distance between two labels' centres, in units of the longer axis
LABEL_CLEAR = 0.025  # the least distance from a label's centre to another contour line (a 7 pt label's half height,
# with a margin, on a 4-inch axes): no other line runs through a label
LABEL_MARGIN = 0.05  # labels keep this far from the frame
MAX_LABELS = 9


def _polylines(path, step: float) -> np.ndarray:
    """The points of a contour path every ``step`` or closer (its vertices can be far apart on straight runs)."""
    out = []
    for poly in path.to_polygons(closed_only=False):
        if len(poly) < 2:
            out.append(poly)
            continue
        seg = np.diff(poly, axis=0)
        n = np.maximum(1, np.ceil(np.hypot(seg[:, 0], seg[:, 1]) / step).astype(int))
        t = np.concatenate([np.arange(k) / k for k in n])
        idx = np.repeat(np.arange(len(seg)), n)
        out.append(np.vstack([poly[idx] + seg[idx] * t[:, None], poly[-1:]]))
    return np.vstack(out) if out else np.empty((0, 2))


def label_contours_(ax: Axes, cs, scale: Scale, avoid=(), fontsize: float = 7) -> list:
    """Label a few contour lines, the roundest levels first, each where it is furthest from the
    labels already placed, on a stretch of line no other line comes near (``LABEL_CLEAR``); a level
    that has no such point ``LABEL_GAP`` away from the other labels (and the points ``avoid``) is
    left unlabelled. Returns the label texts."""
    from scipy.spatial import cKDTree  # scipy: only when contours are labelled

    x0, x1, y0, y1 = *ax.get_xlim(), *ax.get_ylim()
    unit = max(abs(x1 - x0), abs(y1 - y0)) or 1.0
    w, h = abs(x1 - x0) / unit, abs(y1 - y0) / unit
    paths = cs.get_paths()
    points = [(_polylines(p, 0.004 * unit) - (x0, y0)) / unit if len(p.vertices) else np.empty((0, 2))
              for p in paths]
    owner = np.concatenate([np.full(len(p), k) for k, p in enumerate(points)]) if points else np.empty(0)
    everything = np.vstack(points) if points else np.empty((0, 2))
    order = sorted(range(len(paths)), key=lambda k: (_roundness(float(cs.levels[k]), scale.log), k))
    placed: list[tuple[float, float]] = [((px - x0) / unit, (py - y0) / unit) for px, py in avoid]
    chosen, positions = [], []
    for k in order:
        if len(chosen) >= MAX_LABELS:
            break
        uv = points[k]
        if not len(uv):
            continue
        keep = (uv[:, 0] > LABEL_MARGIN) & (uv[:, 0] < w - LABEL_MARGIN) & (uv[:, 1] > LABEL_MARGIN) & \
            (uv[:, 1] < h - LABEL_MARGIN)
        others = everything[owner != k]
        if len(others) and keep.any():
            keep[keep] = cKDTree(others).query(uv[keep], distance_upper_bound=LABEL_CLEAR)[0] >= LABEL_CLEAR
        if not keep.any():
            continue
        uv = uv[keep]
        if placed:
            gap = cKDTree(np.asarray(placed)).query(uv)[0]
        else:  # the first label: where the line is furthest from its own middle, away from the crowd at a minimum
            gap = np.hypot(*(uv - uv.mean(axis=0)).T) + 1.0
        best = int(np.argmax(gap))
        if gap[best] < LABEL_GAP:
            continue
        placed.append(tuple(uv[best]))
        chosen.append(float(cs.levels[k]))
        positions.append((x0 + uv[best][0] * unit, y0 + uv[best][1] * unit))
    if not chosen:
        return []
    pairs = sorted(zip(chosen, positions, strict=True))
    texts = ax.clabel(cs, [c for c, _ in pairs], manual=[p for _, p in pairs], inline=True, inline_spacing=3,
                      fontsize=fontsize, fmt=level_text, colors="k")
    return list(texts)


def fill_extensions_(ax: Axes, x, y, z, scale: Scale, style: Style, alpha: float = 0.4) -> list:
    """Where contour lines alone would leave the paper white, tint the values beyond the colour
    range with the colour bar's extension colours (lightly: the lines stay visible): above
    ``vmax`` (over), below ``vmin`` or below what a coarse grid resolves (under). Returns the
    filled sets."""
    cmap = colormaps[style.cmap]
    out = []
    z = np.ma.asarray(z)
    top, bottom = float(z.max()), float(z.min())
    if scale.extend in ("max", "both") and top > scale.vmax:
        out.append(ax.contourf(x, y, z, levels=[scale.vmax, top + abs(top) * 1e-6 + 1e-12], colors=[cmap.get_over()],
                               alpha=alpha, zorder=0))
    if scale.extend in ("min", "both") and bottom < scale.vmin:
        out.append(ax.contourf(x, y, z, levels=[bottom - abs(bottom) * 1e-6 - 1e-12, scale.vmin],
                               colors=[cmap.get_under()], alpha=alpha, zorder=0))
    for art in out:
        art.set_gid("extension")
    return out


def plot_1d(ax: Axes, surface: Surface, style: Style = DEFAULT_STYLE, acc: bool = True, label: str | None = None,
            color: str = "b"):
    """A 1D quantity along x (left axis) and, for a loss, the accuracy of its split (right axis,
    dashed). ``style.quantity="loss"`` on a file with several splits draws each split's loss and
    accuracy, one colour per split, with a legend. ``style.vmin``/``vmax`` limit the left axis,
    ``style.xlim`` the x range; ``style.scale`` ``auto`` is log for a loss over more than two
    decades. Returns ``(line, acc_line)`` of the quantity."""
    if surface.ndim != 1:
        raise LandscapeError(f"a 1D view needs a 1D surface; this one is {surface.ndim}D")
    xlim, quantity = style.xlim, style.quantity
    if xlim is not None and (xlim[1] <= surface.x.min() or xlim[0] >= surface.x.max()):
        raise LandscapeError(f"the x range {xlim[0]:g}:{xlim[1]:g} lies outside the data "
                             f"({surface.x.min():g}..{surface.x.max():g}): the figure would be empty")
    key = surface.key(quantity)
    keys = [key]
    if quantity == "loss":  # every split's loss, the first one's first
        keys += [k for k in surface.values if k.endswith("_loss") and k != key and np.isfinite(surface.values[k]).any()]
    several = len(keys) > 1
    colors = [color, "darkorange", "green", "purple"] if several else [color]
    sc = scale_for(np.concatenate([surface.quantity(k) for k in keys]), style, surface.label(quantity),
                   key.endswith("loss"))
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
    ax.set_xlabel(axis_labels(surface)[0])
    ax.set_ylabel(LABELS["loss"] if several else surface.label(quantity), color="k" if several else color)
    if sc.log:
        ax.set_yscale("log")
    if style.vmin is not None or style.vmax is not None:
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


def _scale_of(surface: Surface, style: Style, levels: Scale | None) -> Scale:
    return levels if levels is not None else surface_scale(surface, style)


def contour(ax: Axes, surface: Surface, style: Style = DEFAULT_STYLE, levels: Scale | None = None,
            labels: bool = True):
    """Contour lines of a 2D surface at round levels (a coarse grid's from an interpolation:
    :func:`drawn`, its lowest point marked), a few of them labelled apart; values beyond the
    colour range painted in the colour bar's extension colours. ``levels``: a :class:`Scale`
    shared with other panels (default: :func:`surface_scale`). Returns the ``QuadContourSet``."""
    sc = _scale_of(surface, style, levels)
    q = style.quantity
    x, y, z = drawn(surface, q, sc.log)
    avoid = []
    if z.shape != surface.shape and np.nanmin(np.asarray(surface.quantity(q), dtype=float)) < sc.vmin:
        m = mark_minimum(ax, surface, q)  # below the colours of a coarse grid: its value said in words
        avoid = [tuple(np.ravel(m.get_xydata()))]
    cs = ax.contour(x, y, z, levels=sc.levels, cmap=style.cmap, norm=sc.norm)
    fill_extensions_(ax, x, y, z, sc, style)
    label_axes_(ax, surface)
    ax.set_aspect("equal", adjustable="box")
    if labels and len(cs.levels):
        label_contours_(ax, cs, sc, avoid)
    return cs


def contourf(ax: Axes, surface: Surface, style: Style = DEFAULT_STYLE, levels: Scale | None = None):
    """Filled contours of a 2D surface (a coarse grid's from an interpolation: :func:`drawn`, its
    lowest point marked), bands between round levels; values beyond the colour range in the
    colour bar's extension colours. Returns the ``QuadContourSet``."""
    sc = _scale_of(surface, style, levels)
    q = style.quantity
    x, y, z = drawn(surface, q, sc.log)
    if z.shape != surface.shape and np.nanmin(np.asarray(surface.quantity(q), dtype=float)) < sc.vmin:
        mark_minimum(ax, surface, q)
    cs = ax.contourf(x, y, z, levels=sc.bands, cmap=style.cmap, norm=sc.norm, extend=sc.extend)
    label_axes_(ax, surface)
    ax.set_aspect("equal", adjustable="box")
    return cs


def evaluated_points(ax: Axes, surface: Surface, style: Style = DEFAULT_STYLE, size: float = 16.0):
    """Mark the points where an adaptive surface evaluated the network (its other points are
    interpolated): white-edged dots, labelled for the legend ("evaluated (N of M points)").
    Returns the ``PathCollection``, or None for a surface without an ``evaluated`` mask."""
    mask = surface.arrays.get("evaluated")
    if mask is None:
        return None
    mask = np.asarray(mask).astype(bool)
    label = f"evaluated ({int(mask.sum())} of {mask.size} points; the rest interpolated)"
    if surface.ndim == 1:
        return ax.scatter(surface.x[mask], np.asarray(surface.quantity(style.quantity))[mask], s=size, c="k",
                          edgecolors="white", linewidths=0.6, zorder=4, label=label)
    xx, yy = np.meshgrid(surface.x, surface.y)
    return ax.scatter(xx[mask], yy[mask], s=size, c="k", marker="o", edgecolors="white", linewidths=0.6, zorder=4,
                      label=label)


def heatmap(ax: Axes, surface: Surface, style: Style = DEFAULT_STYLE, levels: Scale | None = None):
    """A heat map of a 2D surface (cells centred on the grid points); values beyond the colour
    range take the colour bar's extension colours. Returns the ``QuadMesh``."""
    sc = levels if levels is not None else surface_scale(surface, style, contoured=False)
    z = _z(surface, style.quantity, sc.log)
    mesh = ax.pcolormesh(surface.x, surface.y, z, shading="nearest", cmap=style.cmap, norm=sc.norm)
    label_axes_(ax, surface)
    ax.set_aspect("equal", adjustable="box")
    return mesh


def surface3d(ax, surface: Surface, style: Style = DEFAULT_STYLE):
    """A 3D surface on an ``Axes3D`` (``projection="3d"``). Returns the ``Poly3DCollection``.

    Masked points are drawn as holes; values above ``vmax`` are clipped to it, so a single
    exploding point does not flatten the whole picture. On a log scale the height is log10.
    """
    q = style.quantity
    sc = scale_for(surface.quantity(q), style, surface.label(q), surface.key(q).endswith("loss"))
    z = _z(surface, q, sc.log)
    zz = np.ma.clip(z, sc.vmin, sc.vmax)
    if sc.log:
        zz = np.ma.log10(zz)
    xx, yy = np.meshgrid(surface.x, surface.y)
    filled = zz.filled(np.nan)
    art = ax.plot_surface(xx, yy, filled, cmap=style.cmap, linewidth=0, antialiased=True,
                          norm=Normalize(np.nanmin(filled), np.nanmax(filled)))
    label_axes_(ax, surface)
    label = surface.label(q)
    ax.set_zlabel(f"log10 {label}" if sc.log else label)
    for axis in (ax.xaxis, ax.yaxis, ax.zaxis):
        axis.set_major_locator(MaxNLocator(5))
    ax.tick_params(labelsize=8, pad=1)
    return art
