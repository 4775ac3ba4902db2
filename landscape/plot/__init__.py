"""Plots of surfaces: matplotlib functions that take an ``ax`` and return the artist.

Also :mod:`landscape.plot.interactive` (plotly, imported on demand: an optional dependency).
"""

from landscape.plot.compare import compare, compare_figure, describe, shared_levels
from landscape.plot.mpl import contour, contourf, heatmap, masked, plot_1d, surface3d
from landscape.plot.path import pc_labels, trajectory, trajectory_figure
from landscape.plot.vtk import write_vtk

__all__ = [
    "compare", "compare_figure", "contour", "contourf", "describe", "heatmap", "masked",
    "pc_labels", "plot_1d", "shared_levels", "surface3d", "trajectory", "trajectory_figure",
    "write_vtk",
]
