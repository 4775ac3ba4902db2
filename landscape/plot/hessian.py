"""The Hessian's spectral density: a log-scale curve with bars at the top eigenvalues.

``spectral_density(ax, density, eigenvalues)`` draws on a matplotlib ``ax`` and returns the curve;
``density_figure(summary)`` returns a whole :class:`matplotlib.figure.Figure` (no pyplot). Nothing
here imports torch: the density is anything with ``grid`` and ``density`` arrays
(a :class:`landscape.hessian.Density`) or a ``(grid, density)`` pair.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

if TYPE_CHECKING:
    from landscape.hessian.summary import HessianSummary

FLOOR = 1e-7  # the log axis starts this fraction below the peak: lower densities are the kernels' tails


def _arrays(density) -> tuple[np.ndarray, np.ndarray]:
    if hasattr(density, "grid") and hasattr(density, "density"):
        return np.asarray(density.grid, dtype=float), np.asarray(density.density, dtype=float)
    grid, values = density
    return np.asarray(grid, dtype=float), np.asarray(values, dtype=float)


def spectral_density(
    ax: Axes,
    density,
    eigenvalues: Sequence[float] | np.ndarray | None = None,
    log: bool = True,
    color: str = "C0",
    bar_color: str = "C3",
    label: str | None = "spectral density",
) -> Line2D:
    """Draw the density on ``ax`` (log scale unless ``log=False``) with a vertical bar at each of
    ``eigenvalues`` (e.g. the top-k); return the density's line."""
    grid, values = _arrays(density)
    lo = hi = None
    if log:  # the axis starts FLOOR below the peak; the curve runs down through its bottom edge, unbroken,
        # so every bump stands on the axis (not floating, not on a plateau drawn at the floor)
        peak = float(np.max(values)) if values.size and np.max(values) > 0 else 1.0
        lo, hi = peak * FLOOR, peak * 3.0
        shown = np.maximum(values, lo * 1e-3)  # zeros and the kernels' far tails: below the axis, off the plot
        ax.set_yscale("log")
    else:
        shown = values
    (line,) = ax.plot(grid, shown, color=color, lw=1.2, label=label)
    if log:
        ax.set_ylim(lo, hi)
    if eigenvalues is not None and len(eigenvalues):
        ev = np.asarray(eigenvalues, dtype=float)
        lo, hi = (lo, hi) if log else (0.0, float(np.nanmax(shown)) * 1.05 if shown.size else 1.0)
        ax.vlines(ev, lo, hi, colors=bar_color, linestyles="--", lw=0.9,
                  label=f"top {len(ev)} eigenvalue{'s' if len(ev) > 1 else ''}")
        ax.set_ylim(lo, hi)
        left, right = min(grid[0], ev.min()), max(grid[-1], ev.max())
        pad = 0.02 * (right - left or 1.0)
        ax.set_xlim(left - pad, right + pad)
    ax.set_xlabel("eigenvalue")
    ax.set_ylabel("density (log scale)" if log else "density")
    return line


def density_figure(summary: HessianSummary, title: str | None = None, log: bool = True) -> Figure:
    """A figure of a summary's density with its top eigenvalues (the summary needs a density)."""
    if summary.density is None:
        raise ValueError("the summary has no density (compute it with density=True)")
    fig = Figure(figsize=(6.4, 4.0), layout="constrained")
    ax = fig.add_subplot()
    spectral_density(ax, summary.density, summary.top_eigenvalues, log=log)
    text = f"max {summary.max_eig:.4g}, min {summary.min_eig:.4g}"
    if summary.trace is not None:
        text += f", trace {summary.trace.estimate:.4g}"
    ax.set_title(f"{title}\n{text}" if title else f"Hessian spectrum: {text}", fontsize=10)
    ax.legend(loc="upper right", fontsize=8)
    return fig


__all__ = ["density_figure", "spectral_density"]
