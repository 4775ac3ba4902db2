"""Plots of surfaces: matplotlib functions that take an ``ax`` (and a :class:`Style`, the plot
options) and return the artist.

Also :mod:`landscape.plot.interactive` (plotly figures, the offline HTML page, a notebook view
with a static fallback), imported on demand. Nothing here imports torch.
"""

from landscape.io.trajectory_file import pc_labels
from landscape.plot.compare import compare, compare_figure, describe, shared_levels, shared_scale, titles_of
from landscape.plot.labels import axis_labels
from landscape.plot.mpl import Scale, colorbar, contour, contourf, heatmap, masked, plot_1d, scale_for, surface3d
from landscape.plot.path import trajectory, trajectory_figure
from landscape.plot.sharpness import gap_figure, gap_scatter
from landscape.plot.style import Style
from landscape.plot.vtk import write_vti, write_vtk

__all__ = [
    "Scale", "Style", "axis_labels", "colorbar", "compare", "compare_figure", "contour", "contourf", "describe",
    "gap_figure", "gap_scatter", "heatmap", "masked",
    "pc_labels", "plot_1d", "scale_for", "shared_levels", "shared_scale", "surface3d", "titles_of", "trajectory",
    "trajectory_figure", "write_vti", "write_vtk",
]
