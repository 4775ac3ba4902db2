"""Plots of quantized training: the Markov-chain toy of Li et al. (NIPS'17, Sec. 5).

Functions take an ``ax`` and return the artist; :func:`markov_figure` returns a ``Figure``
(no pyplot, no global state).
"""

from __future__ import annotations

import numpy as np
from matplotlib.axes import Axes
from matplotlib.container import BarContainer
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

SR_COLOR = "tab:red"
BC_COLOR = "tab:blue"


def objective(ax: Axes, toy, points: int = 400) -> Line2D:
    """The toy's objective over its range, its grid points marked; returns the curve."""
    w = np.linspace(toy.low, toy.high, points)
    (line,) = ax.plot(w, toy.f(w), color="black", lw=1.5, label="f(w)")
    x = toy.states()
    ax.plot(x, toy.f(x), "o", color="gray", ms=3, label=f"grid points (spacing {toy.delta:g})")
    ax.set_xlim(toy.low - toy.delta, toy.high + toy.delta)
    ax.set_xlabel("weight w")
    ax.set_ylabel("objective")
    return line


def distribution(ax: Axes, states: np.ndarray, probs: np.ndarray, color: str = SR_COLOR,
                 label: str | None = None, width: float | None = None) -> BarContainer:
    """A distribution over grid points as bars; returns the bars."""
    states = np.asarray(states, dtype=float)
    step = float(np.min(np.diff(states))) if len(states) > 1 else 1.0
    bars = ax.bar(states, probs, width=0.8 * step if width is None else width, color=color, label=label)
    ax.set_ylim(0, 1.05)
    ax.set_xlim(states[0] - step, states[-1] + step)
    return bars


def markov_figure(result) -> Figure:
    """The objective above, SR's stationary distribution (exact) and BC's simulated distribution of
    its quantized weight at each learning rate below, with each one's entropy (nats) and standard
    deviation."""
    toy = result.toy
    x = toy.states()
    n = len(result.rates)
    fig = Figure(figsize=(3.0 * n, 7.5), layout="constrained")
    gs = fig.add_gridspec(3, n, height_ratios=[1.1, 1, 1])
    ax0 = fig.add_subplot(gs[0, :])
    objective(ax0, toy)
    ax0.set_title(f"objective, gradient noise std {toy.noise:g}; SR: exact stationary distribution; "
                  f"BC: {result.chains} chains after {result.steps} steps", fontsize=9)
    ax0.legend(fontsize=8, loc="upper center")
    for k, lr in enumerate(result.rates):
        for row, (probs, (sd, entropy), color, name) in enumerate((
                (result.sr[k], result.sr_spread[k], SR_COLOR, "SR"),
                (result.bc[k], result.bc_spread[k], BC_COLOR, "BC"))):
            ax = fig.add_subplot(gs[row + 1, k])
            distribution(ax, x, probs, color=color, label=name)
            ax.set_title(f"{name}, lr = {lr:g}: entropy {entropy:.2f}, sd {sd:.2f}", fontsize=9)
            if k == 0:
                ax.set_ylabel("probability")
            if row == 1:
                ax.set_xlabel("weight w")
    return fig


__all__ = ["distribution", "markov_figure", "objective"]
