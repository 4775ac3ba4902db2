"""Mode connectivity drawn: loss and error along t for the curve and the straight line
(:func:`path_figure`), and the curve on the plane through a, b and the bend (:func:`plane_figure`),
as Garipov et al.'s figures show them."""

from __future__ import annotations

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from landscape.connect.curve import PATHS
from landscape.connect.path import PathResult
from landscape.connect.plane import PlanePath
from landscape.io.surface_file import Surface
from landscape.plot import mpl
from landscape.plot.style import DEFAULT_STYLE, Style

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


def path_figure(result: PathResult, title: str = "", style: Style = DEFAULT_STYLE) -> Figure:
    """Loss (left; log-scaled with ``style.scale="log"``) and error (right) along t for the curve
    and the straight line."""
    fig = Figure(figsize=(10, 4), layout="constrained")
    ax_loss, ax_err = fig.subplots(1, 2)
    along_t(ax_loss, result, "loss", style.log)
    along_t(ax_err, result, "err")
    if title:
        fig.suptitle(title, fontsize=9)
    return fig


def on_plane(ax: Axes, path: PlanePath, color: str = "white", annotate: bool = True):
    """The curve through its plane, the straight line from a to b (dotted), and the points a, b and
    the bend. A Bezier curve does not pass through its bend (the control point, the curve's
    parameter): it is marked apart, hollow, and named so; a polygonal chain's bend is a point of
    the curve. Returns the curve's ``Line2D``."""
    (line,) = ax.plot(path.x, path.y, "-", color=color, lw=2, label=f"{path.kind} curve")
    ax.plot([path.a[0], path.b[0]], [path.a[1], path.b[1]], ":", color=color, lw=1.5, label="straight line")
    on_curve = path.kind != "bezier"
    ends = {"a": path.a, "b": path.b}
    xs, ys = zip(*ends.values(), strict=True)
    ax.plot(xs, ys, "o", ms=7, mfc=color, mec="black", zorder=5, label="the minima a and b")
    bend_text = "bend" if on_curve else "control point (not on the curve)"
    ax.plot([path.bend[0]], [path.bend[1]], "o" if on_curve else "D", ms=7, mfc=color if on_curve else "none",
            mec="black", mew=1.5, zorder=5, label=f"{bend_text}: the trained parameter")
    if annotate:
        for text, (x, y) in {**ends, bend_text: path.bend}.items():
            ax.annotate(text, (x, y), xytext=(6, 6), textcoords="offset points", fontsize=9, color="black",
                        bbox={"boxstyle": "round,pad=0.2", "fc": "white", "ec": "none", "alpha": 0.8}, zorder=6)
    return line


def plane_figure(surface: Surface, path: PlanePath, style: Style = DEFAULT_STYLE) -> Figure:
    """Filled contours of the plane's ``style.quantity`` with the curve and its points on it, and a
    legend naming them; equal aspect: the plane's directions are orthogonal and of equal length,
    so its distances and angles are true."""
    fig = Figure(figsize=(6.4, 5.4), layout="constrained")
    ax = fig.subplots()
    sc = mpl.surface_scale(surface, style)
    cs = mpl.contourf(ax, surface, style, levels=sc)
    on_plane(ax, path)
    ax.set_aspect("equal", adjustable="box")
    ax.set_xlim(float(np.min(surface.x)), float(np.max(surface.x)))
    ax.set_ylim(float(np.min(surface.y)), float(np.max(surface.y)))
    ax.set_xlabel("along b - a (a at 0, b at 1)")
    ax.set_ylabel("towards the bend")
    mpl.colorbar(fig, cs, ax, surface.label(style.quantity), sc)
    handles = [h for h in ax.get_lines() if not h.get_label().startswith("_")]
    ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=2, fontsize=8,
              facecolor="0.6", edgecolor="none", framealpha=1.0)  # grey: the curve and its marks are white
    ax.set_title(surface.title(), fontsize=9)
    return fig


__all__ = ["along_t", "on_plane", "path_figure", "plane_figure"]
