"""Several surfaces side by side on one colour scale, as the paper compares minimizers.

The levels (and so the norm) are computed once over the finite values of all surfaces, unless
given, and every panel shares the axis ranges; each panel is titled by :func:`describe`.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from landscape.checkpoint import read_checkpoint
from landscape.errors import LandscapeError
from landscape.plot import mpl
from landscape.surface import Surface

KINDS = ("contour", "contourf", "heatmap")
OPTIMIZERS = {"sgd": "SGD", "adam": "Adam"}


def _training(surface: Surface) -> dict:
    """The metadata ``landscape-train`` saved with the surface's model, or {} if unreadable."""
    path = surface.attrs.get("model")
    if not path or not os.path.isfile(str(path)):
        return {}
    try:
        ckpt = read_checkpoint(str(path))  # weights_only: the file is untrusted
    except LandscapeError:
        return {}
    return ckpt if isinstance(ckpt, dict) else {}


def describe(surface: Surface) -> str:
    """A one-line title: architecture, optimizer, batch size, weight decay, test error.

    The training details come from the checkpoint named in ``attrs["model"]`` when it is a
    ``landscape-train`` checkpoint that still exists; whatever is unknown is left out.
    """
    a = surface.attrs
    ckpt = _training(surface)
    args = ckpt.get("args") if isinstance(ckpt.get("args"), dict) else {}
    bits = [str(a.get("arch") or ckpt.get("arch") or "")]
    if args.get("optimizer"):
        bits.append(OPTIMIZERS.get(str(args["optimizer"]), str(args["optimizer"])))
    if args.get("batch_size"):
        bits.append(f"bs={args['batch_size']}")
    if args.get("weight_decay") is not None:
        bits.append(f"wd={args['weight_decay']:g}")
    if isinstance(ckpt.get("accuracy"), (int, float)):
        bits.append(f"test err {100.0 - ckpt['accuracy']:.2f} %")
    text = ", ".join(b for b in bits if b)
    return text or str(a.get("dataset") or "surface")


def _values(surface: Surface, quantity: str) -> np.ndarray:
    key = f"{surface.split}_{quantity}"
    if key not in surface.values:
        raise LandscapeError(f"a surface has no {key!r} (it has {', '.join(surface.values)})")
    return np.asarray(surface.values[key], dtype=float)


def shared_levels(surfaces: Sequence[Surface], quantity: str = "loss", levels: int = 30,
                  vmin: float | None = None, vmax: float | None = None,
                  log: bool = False) -> np.ndarray:
    """``levels`` contour levels spanning the finite values of all ``surfaces`` together."""
    every = np.concatenate([_values(s, quantity).ravel() for s in surfaces])
    return mpl.levels_for(every, vmin, vmax, int(levels), log)


def _check(surfaces: Sequence[Surface]) -> int:
    if not surfaces:
        raise LandscapeError("nothing to compare: no surfaces given")
    dims = {s.ndim for s in surfaces}
    if len(dims) != 1:
        raise LandscapeError("cannot compare 1D and 2D surfaces together")
    return dims.pop()


def _axes_list(axes, count: int) -> list[Axes]:
    flat = [axes] if isinstance(axes, Axes) else list(np.ravel(np.asarray(axes, dtype=object)))
    if len(flat) < count:
        raise LandscapeError(f"{count} surfaces need {count} axes, got {len(flat)}")
    return flat


def _compare_1d(axes: list[Axes], surfaces, quantity, vmin, vmax, log, titles) -> list:
    overlay = len(axes) < len(surfaces) or len(axes) == 1
    lines = []
    for k, (s, title) in enumerate(zip(surfaces, titles, strict=True)):
        ax = axes[0] if overlay else axes[k]
        (line,) = ax.plot(s.x, mpl.masked(_values(s, quantity)), lw=2, label=title)
        lines.append(line)
        if not overlay:
            ax.set_title(title, fontsize=9)
    lo, hi = shared_levels(surfaces, quantity, 2, vmin, vmax, log)
    for ax in axes[:1] if overlay else axes[:len(surfaces)]:
        ax.set_yscale("log" if log else "linear")
        ax.set_ylim(lo, hi)
        ax.set_xlim(min(s.x.min() for s in surfaces), max(s.x.max() for s in surfaces))
        ax.set_xlabel("x")
        ax.set_ylabel(quantity)
    if overlay:
        axes[0].legend(fontsize=8)
    return lines


def compare(axes, surfaces: Sequence[Surface], quantity: str = "loss", kind: str = "contour",
            levels: int | np.ndarray = 30, vmin: float | None = None, vmax: float | None = None,
            log: bool = False, titles: Sequence[str] | None = None, cmap: str = "viridis") -> list:
    """Draw ``surfaces`` on ``axes`` with one colour scale and common axis ranges.

    2D: one panel each, drawn by ``kind`` (contour, contourf or heatmap) with the same levels and
    norm. 1D: the curves overlaid on a single axes, or one per axes with a common y range.
    Returns the artists, one per surface.
    """
    ndim = _check(surfaces)
    axes = _axes_list(axes, 1 if ndim == 1 else len(surfaces))
    titles = list(titles) if titles is not None else [describe(s) for s in surfaces]
    if ndim == 1:
        return _compare_1d(axes, surfaces, quantity, vmin, vmax, log, titles)
    if kind not in KINDS:
        raise LandscapeError(f"unknown plot kind {kind!r} ({', '.join(KINDS)})")
    lv = (np.asarray(levels, dtype=float) if not np.isscalar(levels)
          else shared_levels(surfaces, quantity, int(levels), vmin, vmax, log))
    xlim = (min(s.x.min() for s in surfaces), max(s.x.max() for s in surfaces))
    ylim = (min(s.y.min() for s in surfaces), max(s.y.max() for s in surfaces))
    artists = []
    for ax, s, title in zip(axes, surfaces, titles, strict=False):
        if kind == "heatmap":
            art = mpl.heatmap(ax, s, quantity, vmin=lv[0], vmax=lv[-1], log=log, cmap=cmap)
        else:
            draw = mpl.contour if kind == "contour" else mpl.contourf
            art = draw(ax, s, quantity, levels=lv, log=log, cmap=cmap)
        ax.set_xlim(*xlim)
        ax.set_ylim(*ylim)
        ax.set_title(title, fontsize=9)
        artists.append(art)
    return artists


def compare_figure(surfaces: Sequence[Surface], quantity: str = "loss", kind: str = "contour",
                   levels: int | np.ndarray = 30, vmin: float | None = None,
                   vmax: float | None = None, log: bool = False, ncols: int | None = None,
                   titles: Sequence[str] | None = None, panel: tuple[float, float] = (4.0, 3.6),
                   cmap: str = "viridis") -> Figure:
    """A figure of :func:`compare`: a grid of panels (2D) or one axes (1D), one colour bar."""
    ndim = _check(surfaces)
    if ndim == 1:
        fig = Figure(figsize=(6, 4), layout="constrained")
        compare(fig.subplots(), surfaces, quantity, vmin=vmin, vmax=vmax, log=log, titles=titles)
        return fig
    ncols = ncols or min(len(surfaces), 3)
    nrows = -(-len(surfaces) // ncols)
    fig = Figure(figsize=(panel[0] * ncols + 1.0, panel[1] * nrows), layout="constrained")
    axes = list(np.ravel(fig.subplots(nrows, ncols, squeeze=False)))
    artists = compare(axes, surfaces, quantity, kind, levels, vmin, vmax, log, titles, cmap)
    for ax in axes[len(surfaces):]:
        ax.set_visible(False)
    label = f"{quantity} (log scale)" if log else quantity
    mpl.colorbar(fig, artists[0], axes[:len(surfaces)], label, log, shrink=0.9)
    return fig


__all__ = ["compare", "compare_figure", "describe", "shared_levels"]
