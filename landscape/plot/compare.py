"""Several surfaces side by side on one colour scale, as the paper compares minimizers.

The levels (and so the norm) are computed once over the finite values of all surfaces, unless
given, and every panel shares the axis ranges; each panel is titled by :func:`describe`. 1D
surfaces are overlaid on one axes, or with ``twin=True`` drawn as loss (solid, left axis) and
accuracy (dashed, right axis) per surface, as the original tool's ``plot_1d_loss_err_repeat``.
"""

from __future__ import annotations

import textwrap
from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from landscape.errors import LandscapeError
from landscape.io.surface_file import Surface
from landscape.plot import mpl

KINDS = ("contour", "contourf", "heatmap")
OPTIMIZERS = {"sgd": "SGD", "adam": "Adam"}


def _training(surface: Surface) -> dict:
    """What the surface's checkpoint recorded about its training: the ``checkpoint_*`` attributes
    that ``landscape-surf`` writes (``landscape-plot`` adds them to older files from the checkpoint)."""
    return {k[len("checkpoint_"):]: v for k, v in surface.attrs.items() if k.startswith("checkpoint_")}


def describe(surface: Surface, flops: bool = True) -> str:
    """A one-line title: architecture, optimizer, batch size, weight decay, pruning or quantization,
    FLOPs (unless ``flops=False``) and test error, from what was recorded; whatever is unknown is
    left out."""
    a = surface.attrs
    t = _training(surface)
    text = describe_training(t, str(a.get("arch") or t.get("arch") or ""), flops)
    return text or str(a.get("dataset") or "surface")


def describe_training(t: Mapping, arch: str = "", flops: bool = True) -> str:
    """:func:`describe`'s title from what a checkpoint records (:meth:`landscape.io.checkpoint.Checkpoint.summary`)."""
    bits = [arch]
    if t.get("optimizer"):
        bits.append(OPTIMIZERS.get(str(t["optimizer"]), str(t["optimizer"])))
    if t.get("batch_size") not in (None, ""):
        bits.append(f"bs={t['batch_size']}")
    if t.get("weight_decay") not in (None, ""):
        bits.append(f"wd={float(t['weight_decay']):g}")
    for key in ("pruned", "lowrank", "quant", "sam", "distilled"):
        if t.get(key):
            bits.append(str(t[key]))
    if flops and t.get("flops") not in (None, ""):
        bits.append(f"{float(t['flops']):.3g} FLOPs")
    if t.get("test_error") not in (None, ""):
        bits.append(f"test err {float(t['test_error']):.2f} %")
    return ", ".join(b for b in bits if b)


def shared_scale(surfaces: Sequence[Surface], quantity: str = "loss", levels: int = 30,
                 vmin: float | None = None, vmax: float | None = None, scale: str = "auto",
                 step: float | None = None) -> mpl.Scale:
    """Levels spanning the finite values of all ``surfaces`` together."""
    every = np.concatenate([np.asarray(s.quantity(quantity), dtype=float).ravel() for s in surfaces])
    if scale == "auto" and not surfaces[0].key(quantity).endswith("loss"):
        scale = "linear"
    return mpl.scale_for(every, vmin, vmax, int(levels), scale, step, surfaces[0].label(quantity))


def shared_levels(surfaces: Sequence[Surface], quantity: str = "loss", levels: int = 30,
                  vmin: float | None = None, vmax: float | None = None, scale: str = "auto") -> np.ndarray:
    """The levels of :func:`shared_scale`."""
    return shared_scale(surfaces, quantity, levels, vmin, vmax, scale).levels


def _check(surfaces: Sequence[Surface]) -> int:
    if not surfaces:
        raise LandscapeError("nothing to compare: no surfaces given")
    dims = {s.ndim for s in surfaces}
    if len(dims) != 1:
        raise LandscapeError("cannot compare surfaces of different dimensions together")
    if dims == {3}:
        raise LandscapeError("volumes cannot be compared in one figure: compare 1D or 2D surfaces")
    return dims.pop()


def _axes_list(axes, count: int) -> list[Axes]:
    flat = [axes] if isinstance(axes, Axes) else list(np.ravel(np.asarray(axes, dtype=object)))
    if len(flat) < count:
        raise LandscapeError(f"{count} surfaces need {count} axes, got {len(flat)}")
    return flat


def _compare_1d(axes: list[Axes], surfaces, quantity, vmin, vmax, scale, titles, twin, xlim) -> list:
    overlay = len(axes) < len(surfaces) or len(axes) == 1
    sc = shared_scale(surfaces, quantity, 2, vmin, vmax, "log" if scale == "log" else "linear")
    colors = [f"C{k}" for k in range(len(surfaces))]
    lines, acc_axis = [], None
    for k, (s, title) in enumerate(zip(surfaces, titles, strict=True)):
        ax = axes[0] if overlay else axes[k]
        (line,) = ax.plot(s.x, mpl.masked(s.quantity(quantity)), "-", color=colors[k], lw=2, label=title)
        lines.append(line)
        acc_key = s.key(quantity)[: -len("loss")] + "acc" if s.key(quantity).endswith("loss") else None
        if twin and acc_key in s.values:
            if acc_axis is None or not overlay:
                acc_axis = ax.twinx()
                acc_axis.set_ylabel("accuracy (%)")
                acc_axis.set_ylim(0, 100)
            acc_axis.plot(s.x, mpl.masked(s.values[acc_key]), "--", color=colors[k], lw=1.5)
        if not overlay:
            ax.set_title(title, fontsize=9)
    lo = min(s.x.min() for s in surfaces) if xlim is None else xlim[0]
    hi = max(s.x.max() for s in surfaces) if xlim is None else xlim[1]
    for ax in axes[:1] if overlay else axes[:len(surfaces)]:
        ax.set_yscale("log" if sc.log else "linear")
        ax.set_ylim(sc.vmin, sc.vmax)
        if sc.log:
            mpl.log_ticks_(ax.yaxis, sc.vmin, sc.vmax)
        ax.set_xlim(lo, hi)
        ax.set_xlabel("x")
        ax.set_ylabel(surfaces[0].label(quantity) + (" (solid)" if twin else ""))
    if overlay:  # below the axes: curves near 100 % accuracy or at the loss's top are never hidden
        handles = list(lines)
        if twin and acc_axis is not None:
            from matplotlib.lines import Line2D

            handles += [Line2D([], [], color="0.3", lw=2, label="loss (solid)"),
                        Line2D([], [], color="0.3", lw=1.5, ls="--", label="accuracy (dashed)")]
        longest = max(len(str(h.get_label())) for h in handles)
        axes[0].legend(handles=handles, fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.13),
                       ncol=max(1, min(len(handles), 3, 110 // max(longest, 1))), frameon=False)
    return lines


def _wrap(title: str, ax: Axes) -> str:
    """The title broken into lines that fit the panel's width (about 1.9 characters per mm at 9 pt)."""
    width_in = ax.get_position().width * ax.figure.get_figwidth()
    chars = max(20, int(width_in * 25.4 * 0.62))
    return "\n".join(textwrap.wrap(title, chars, break_long_words=False))


def compare(axes, surfaces: Sequence[Surface], quantity: str = "loss", kind: str = "contour",
            levels: int | np.ndarray | mpl.Scale = 30, vmin: float | None = None, vmax: float | None = None,
            scale: str = "auto", titles: Sequence[str] | None = None, cmap: str = "viridis",
            step: float | None = None, twin: bool = False, xlim: tuple[float, float] | None = None) -> list:
    """Draw ``surfaces`` on ``axes`` with one colour scale and common axis ranges.

    2D: one panel each, drawn by ``kind`` (contour, contourf or heatmap) with the same levels and
    norm. 1D: the curves overlaid on a single axes (``twin``: accuracy dashed on a right axis), or
    one per axes with a common y range. Returns the artists, one per surface.
    """
    ndim = _check(surfaces)
    axes = _axes_list(axes, 1 if ndim == 1 else len(surfaces))
    if titles is None:  # FLOPs only where they tell the surfaces apart (pruned networks)
        differ = len({_training(s).get("flops") for s in surfaces}) > 1
        titles = [describe(s, flops=differ) for s in surfaces]
    titles = list(titles)
    if ndim == 1:
        return _compare_1d(axes, surfaces, quantity, vmin, vmax, scale, titles, twin, xlim)
    if kind not in KINDS:
        raise LandscapeError(f"unknown plot kind {kind!r} ({', '.join(KINDS)})")
    if isinstance(levels, mpl.Scale):
        sc = levels
    elif not np.isscalar(levels):
        sc = mpl.Scale(np.asarray(levels, dtype=float), scale == "log")
    else:
        sc = shared_scale(surfaces, quantity, int(levels), vmin, vmax, scale, step)
    xlim = (min(s.x.min() for s in surfaces), max(s.x.max() for s in surfaces))
    ylim = (min(s.y.min() for s in surfaces), max(s.y.max() for s in surfaces))
    artists = []
    for ax, s, title in zip(axes, surfaces, titles, strict=False):
        if kind == "heatmap":
            art = mpl.heatmap(ax, s, quantity, cmap=cmap, levels=sc)
        else:
            draw = mpl.contour if kind == "contour" else mpl.contourf
            art = draw(ax, s, quantity, levels=sc, cmap=cmap)
        ax.set_xlim(*xlim)
        ax.set_ylim(*ylim)
        ax.set_title(_wrap(title, ax), fontsize=9)
        artists.append(art)
    return artists


def compare_figure(surfaces: Sequence[Surface], quantity: str = "loss", kind: str = "contour",
                   levels: int | np.ndarray = 30, vmin: float | None = None,
                   vmax: float | None = None, scale: str = "auto", ncols: int | None = None,
                   titles: Sequence[str] | None = None, panel: tuple[float, float] = (4.0, 3.6),
                   cmap: str = "viridis", step: float | None = None, twin: bool = False,
                   xlim: tuple[float, float] | None = None) -> Figure:
    """A figure of :func:`compare`: a grid of panels (2D) or one axes (1D), one colour bar."""
    ndim = _check(surfaces)
    if ndim == 1:
        fig = Figure(figsize=(7, 4.5), layout="constrained")
        compare(fig.subplots(), surfaces, quantity, vmin=vmin, vmax=vmax, scale=scale, titles=titles, twin=twin,
                xlim=xlim)
        return fig
    ncols = ncols or min(len(surfaces), 3)
    nrows = -(-len(surfaces) // ncols)
    fig = Figure(figsize=(panel[0] * ncols + 1.2, panel[1] * nrows + 0.3), layout="constrained")
    axes = list(np.ravel(fig.subplots(nrows, ncols, squeeze=False)))
    sc = shared_scale(surfaces, quantity, int(levels), vmin, vmax, scale, step) if np.isscalar(levels) else \
        mpl.Scale(np.asarray(levels, dtype=float), scale == "log")
    artists = compare(axes, surfaces, quantity, kind, sc, titles=titles, cmap=cmap)
    for ax in axes[len(surfaces):]:
        ax.set_visible(False)
    mpl.colorbar(fig, artists[0], axes[:len(surfaces)], surfaces[0].label(quantity), sc, match_height=False,
                 shrink=0.9)
    return fig


__all__ = ["compare", "compare_figure", "describe", "describe_training", "shared_levels", "shared_scale"]
