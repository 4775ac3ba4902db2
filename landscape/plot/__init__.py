"""Plots of surfaces: matplotlib functions that take an ``ax`` and return the artist."""

from landscape.plot.mpl import contour, contourf, heatmap, masked, plot_1d, surface3d

__all__ = ["contour", "contourf", "heatmap", "masked", "plot_1d", "surface3d"]
