"""Sharpness against generalization: one point per minimum, the gap against a measure.

Takes :class:`landscape.sharpness.Correlation` results (duck-typed: nothing here imports torch).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

if TYPE_CHECKING:
    from landscape.sharpness.results import Correlation


def gap_scatter(ax: Axes, correlation: Correlation, xlabel: str | None = None,
                ylabel: str = "generalization gap (test - train error, %)"):
    """The minima as points (measure, gap), with the measure's standard error as a horizontal bar
    where there is one, each labelled, and Kendall's tau with its p-value in the title. Returns
    the artist of the points."""
    c = correlation
    x, y = np.asarray(c.values, dtype=float), np.asarray(c.gaps, dtype=float)
    err = np.asarray(c.stderrs, dtype=float) if len(c.stderrs) == len(x) else None
    if err is not None and np.isfinite(err).any():
        ax.errorbar(x, y, xerr=np.where(np.isfinite(err), err, 0.0), fmt="none", ecolor="0.5", lw=1, capsize=2)
    art = ax.scatter(x, y, c=[f"C{k}" for k in range(len(x))], s=36, zorder=3)
    for k, label in enumerate(c.labels):
        ax.annotate(str(k + 1) if len(label) > 24 else label, (x[k], y[k]), textcoords="offset points",
                    xytext=(4, 4), fontsize=7)
    ax.set_xlabel(xlabel or c.measure)
    ax.set_ylabel(ylabel)
    ax.xaxis.set_major_locator(MaxNLocator(4))  # measures span 1e-4 to 1e2: few ticks, in powers of ten
    ax.ticklabel_format(axis="x", style="sci", scilimits=(-2, 3), useMathText=True)
    ax.set_title(f"{c.measure}: Kendall's tau {c.tau:.2f} (p = {c.p_value:.2g}, K = {len(x)})", fontsize=9)
    return art


def gap_figure(correlations: Sequence[Correlation], ncols: int = 3, panel: tuple[float, float] = (3.6, 3.0)) -> Figure:
    """:func:`gap_scatter` for every measure, one panel each; the warning about few minima, if
    any, under the panels."""
    n = max(1, len(correlations))
    ncols = min(ncols, n)
    nrows = -(-n // ncols)
    fig = Figure(figsize=(panel[0] * ncols, panel[1] * nrows + 0.4), layout="constrained")
    axes = list(np.ravel(fig.subplots(nrows, ncols, squeeze=False)))
    for ax, c in zip(axes, correlations, strict=False):
        gap_scatter(ax, c, ylabel="gap (%)")
    for ax in axes[len(correlations):]:
        ax.set_visible(False)
    warning = next((c.warning for c in correlations if c.warning), "")
    if warning:
        fig.suptitle(warning, fontsize=8)
    return fig


__all__ = ["gap_figure", "gap_scatter"]
