"""The optimization path of a run (a :class:`landscape.io.trajectory_file.Trajectory`) over contours.

As in the paper's figures, the axes are the two principal directions, labelled with the share
of the path's variance each explains ("1st PC: 83.5 %").
"""

from __future__ import annotations

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from landscape.io.surface_file import Surface
from landscape.io.trajectory_file import Trajectory, pc_labels
from landscape.plot import mpl
from landscape.plot.style import DEFAULT_STYLE, Style


def _point_label(traj: Trajectory, k: int, fallback: str) -> str:
    epoch = int(traj.epochs[k]) if len(traj.epochs) > k else -1
    return f"{fallback} (epoch {epoch})" if epoch >= 0 else fallback


def trajectory(ax: Axes, traj: Trajectory, color: str = "red", annotate: bool = True,
               label_axes: bool = True):
    """The projected path with a marker per checkpoint, the start and end marked and labelled.

    Returns the path's ``Line2D``.
    """
    x, y = np.asarray(traj.xcoord), np.asarray(traj.ycoord)
    (line,) = ax.plot(x, y, "-o", color=color, ms=3, lw=1.2, label="optimization path")
    ax.plot(x[:1], y[:1], "s", color=color, ms=7)
    ax.plot(x[-1:], y[-1:], "*", color=color, ms=12)
    if annotate:  # boxed labels pushed away from the path, towards the middle so none is cut off
        x0, x1 = ax.get_xlim()
        for k, text in ((0, "start"), (len(x) - 1, "end")):
            right = x[k] < (x0 + x1) / 2
            ax.annotate(_point_label(traj, k, text), (x[k], y[k]), xytext=(10 if right else -10, -14 if k else 10),
                        textcoords="offset points", fontsize=8, color=color, zorder=5,
                        ha="left" if right else "right",
                        bbox={"boxstyle": "round,pad=0.2", "fc": "white", "ec": color, "alpha": 0.85},
                        arrowprops={"arrowstyle": "-", "color": color, "lw": 0.8})
    if label_axes:
        xlabel, ylabel = pc_labels(traj)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
    return line


def trajectory_figure(traj: Trajectory, surface: Surface | None = None, style: Style = DEFAULT_STYLE) -> Figure:
    """The path alone, or over the contours of a ``surface`` computed on the same directions
    (drawn as ``style`` says); the colour bar is exactly as tall as the (equal-aspect) axes."""
    fig = Figure(figsize=(6.4, 5), layout="constrained")
    ax = fig.subplots()
    if surface is not None:
        sc = mpl.surface_scale(surface, style)
        cs = mpl.contour(ax, surface, style, levels=sc, labels=False)
        mpl.colorbar(fig, cs, ax, surface.label(style.quantity), sc)
    trajectory(ax, traj)
    return fig


__all__ = ["trajectory", "trajectory_figure"]
