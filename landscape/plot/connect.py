"""Mode connectivity drawn: loss and error along t for the curve and the straight line
(:func:`path_figure`), and the curve on the plane through a, b and the bend (:func:`plane_figure`),
as Garipov et al.'s figures show them."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from landscape.io.path_file import PATHS, PathResult
from landscape.io.surface_file import Surface
from landscape.plot import mpl

if TYPE_CHECKING:  # torch: landscape-plot draws a path file without it
    from landscape.connect.plane import PlanePath

STYLE = {"curve": {"ls": "-", "lw": 2.0}, "line": {"ls": "--", "lw": 1.5}}
LABEL = {"curve": "curve", "line": "straight line"}
COLORS = ("tab:blue", "tab:orange", "tab:green", "tab:purple")


def along_t(ax: Axes, result: PathResult, quantity: str = "loss", log: bool = False) -> list:
    """``quantity`` (``loss`` or ``err``, %) of the curve (solid) and the straight line (dashed)
    along t, one colour per split, each labelled with its barrier. Returns the lines."""
    lines = []
    for color, (split, entry) in zip(COLORS, result.by_split.items(), strict=False):
        for path in PATHS:
            if quantity == "err":
                values, bar = 100.0 - entry["acc"][path], entry["err_barrier"][path]
            else:
                values, bar = entry["loss"][path], entry["barrier"][path]
            (line,) = ax.plot(result.t, mpl.masked(values), color=color, **STYLE[path],
                              label=f"{split}, {LABEL[path]} (barrier {bar:.3g})")
            lines.append(line)
    ax.set_xlabel("t")
    ax.set_ylabel("loss" if quantity == "loss" else "error (%)")
    ax.set_xlim(result.t[0], result.t[-1])
    if log:
        ax.set_yscale("log")
    ax.legend(fontsize=7, frameon=False)
    return lines


def path_figure(result: PathResult, title: str = "", log: bool = False) -> Figure:
    """Loss (left) and error (right) along t for the curve and the straight line."""
    fig = Figure(figsize=(10, 4), layout="constrained")
    ax_loss, ax_err = fig.subplots(1, 2)
    along_t(ax_loss, result, "loss", log)
    along_t(ax_err, result, "err")
    if title:
        fig.suptitle(title, fontsize=9)
    return fig


def on_plane(ax: Axes, path: PlanePath, color: str = "white", annotate: bool = True):
    """The curve through its plane, the straight line from a to b (dotted), and the three points
    a, b and the bend. Returns the curve's ``Line2D``."""
    (line,) = ax.plot(path.x, path.y, "-", color=color, lw=2, label=f"{path.kind} curve")
    ax.plot([path.a[0], path.b[0]], [path.a[1], path.b[1]], ":", color=color, lw=1.5, label="straight line")
    points = {"a": path.a, "b": path.b, "bend": path.bend}
    xs, ys = zip(*points.values(), strict=True)
    ax.plot(xs, ys, "o", ms=7, mfc=color, mec="black", zorder=5)
    if annotate:
        for text, (x, y) in points.items():
            ax.annotate(text, (x, y), xytext=(6, 6), textcoords="offset points", fontsize=9, color="black",
                        bbox={"boxstyle": "round,pad=0.2", "fc": "white", "ec": "none", "alpha": 0.8}, zorder=6)
    return line


def plane_figure(surface: Surface, path: PlanePath, quantity: str = "loss", levels: int = 30, scale: str = "auto",
                 vmin: float | None = None, vmax: float | None = None, step: float | None = None) -> Figure:
    """Filled contours of the plane's ``quantity`` with the curve and the three points on it; equal
    aspect: the plane's directions are orthogonal and of equal length, so its distances and angles are true."""
    fig = Figure(figsize=(6.4, 5), layout="constrained")
    ax = fig.subplots()
    sc = mpl.surface_scale(surface, quantity, levels, vmin, vmax, scale, step)
    cs = mpl.contourf(ax, surface, quantity, levels=sc)
    on_plane(ax, path)
    ax.set_aspect("equal", adjustable="box")
    ax.set_xlim(float(np.min(surface.x)), float(np.max(surface.x)))
    ax.set_ylim(float(np.min(surface.y)), float(np.max(surface.y)))
    ax.set_xlabel("x (along b - a)")
    ax.set_ylabel("y (towards the bend)")
    mpl.colorbar(fig, cs, ax, surface.label(quantity), sc)
    ax.set_title(surface.title(), fontsize=9)
    return fig


__all__ = ["along_t", "on_plane", "path_figure", "plane_figure"]
