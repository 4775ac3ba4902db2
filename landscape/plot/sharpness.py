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


def _names(correlation: Correlation) -> list[str]:
    """The minima's names, ``minimum k`` where the result has none."""
    labels = list(correlation.labels)
    return [labels[k] if k < len(labels) and labels[k] else f"minimum {k + 1}" for k in range(len(correlation.values))]


def minima_handles(correlation: Correlation) -> list:
    """Legend entries naming the minima: their number and colour as the scatter draws them."""
    from matplotlib.lines import Line2D

    return [Line2D([], [], ls="none", marker="o", ms=6, color=f"C{k}", label=f"{k + 1}: {name}")
            for k, name in enumerate(_names(correlation))]


def gap_scatter(ax: Axes, correlation: Correlation, xlabel: str | None = None,
                ylabel: str = "generalization gap (test - train error, %)", legend: bool = True):
    """The minima as points (measure, gap), with the measure's standard error as a horizontal bar
    where there is one, each numbered (the legend names them; ``legend=False`` leaves it to the
    figure), and Kendall's tau with its p-value in the title. Returns the artist of the points."""
    c = correlation
    x, y = np.asarray(c.values, dtype=float), np.asarray(c.gaps, dtype=float)
    err = np.asarray(c.stderrs, dtype=float) if len(c.stderrs) == len(x) else None
    if err is not None and np.isfinite(err).any():
        ax.errorbar(x, y, xerr=np.where(np.isfinite(err), err, 0.0), fmt="none", ecolor="0.5", lw=1, capsize=2)
    art = ax.scatter(x, y, c=[f"C{k}" for k in range(len(x))], s=36, zorder=3)
    for k in range(len(x)):
        ax.annotate(str(k + 1), (x[k], y[k]), textcoords="offset points", xytext=(4, 4), fontsize=7)
    ax.set_xlabel(xlabel or c.measure)
    ax.set_ylabel(ylabel)
    ax.xaxis.set_major_locator(MaxNLocator(4))  # measures span 1e-4 to 1e2: few ticks, in powers of ten
    ax.ticklabel_format(axis="x", style="sci", scilimits=(-2, 3), useMathText=True)
    ax.set_title(f"{c.measure}: Kendall's tau {c.tau:.2f} (p = {c.p_value:.2g}, K = {len(x)})", fontsize=9)
    if legend:
        ax.legend(handles=minima_handles(c), fontsize=7, loc="best")
    return art


def gap_figure(correlations: Sequence[Correlation], ncols: int = 3, panel: tuple[float, float] = (3.6, 3.0)) -> Figure:
    """:func:`gap_scatter` for every measure, one panel each, one legend below them naming the
    minima; the warning about few minima, if any, above the panels."""
    n = max(1, len(correlations))
    ncols = min(ncols, n)
    nrows = -(-n // ncols)
    fig = Figure(figsize=(panel[0] * ncols, panel[1] * nrows + 0.8), layout="constrained")
    axes = list(np.ravel(fig.subplots(nrows, ncols, squeeze=False)))
    for ax, c in zip(axes, correlations, strict=False):
        gap_scatter(ax, c, ylabel="gap (%)", legend=False)
    for ax in axes[len(correlations):]:
        ax.set_visible(False)
    if correlations:
        handles = minima_handles(correlations[0])
        longest = max(len(h.get_label()) for h in handles)
        per_row = max(1, int(panel[0] * ncols * 13 // (longest + 4)))  # about 13 characters an inch at 8 pt
        fig.legend(handles=handles, loc="outside lower center", ncol=min(len(handles), per_row), fontsize=8,
                   frameon=False, title="minima")
    warning = next((c.warning for c in correlations if c.warning), "")
    if warning:
        fig.suptitle(warning, fontsize=8)
    return fig


__all__ = ["gap_figure", "gap_scatter", "minima_handles"]
