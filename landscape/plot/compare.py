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
from landscape.plot.labels import axis_labels, short_path
from landscape.plot.style import DEFAULT_STYLE, Style

KINDS = ("contour", "contourf", "heatmap")
OPTIMIZERS = {"sgd": "SGD", "adam": "Adam"}


def _training(surface: Surface) -> dict:
    """What the surface's checkpoint recorded about its training: the ``checkpoint_*`` attributes
    that ``landscape-surf`` writes (``landscape-plot`` adds them to older files from the checkpoint)."""
    return {k[len("checkpoint_"):]: v for k, v in surface.attrs.items() if k.startswith("checkpoint_")}


def describe(surface: Surface, flops: bool = True, seed: bool = False) -> str:
    """A one-line title: architecture, optimizer, batch size, weight decay, pruning or quantization,
    FLOPs (unless ``flops=False``), the training seed (with ``seed=True``) and test error, from what
    was recorded; whatever is unknown is left out."""
    a = surface.attrs
    t = _training(surface)
    text = describe_training(t, str(a.get("arch") or t.get("arch") or ""), flops, seed)
    return text or str(a.get("dataset") or "surface")


def describe_training(t: Mapping, arch: str = "", flops: bool = True, seed: bool = False) -> str:
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
    if seed and t.get("seed") not in (None, ""):
        bits.append(f"seed {t['seed']}")
    if t.get("test_error") not in (None, ""):
        bits.append(f"test err {float(t['test_error']):.2f} %")
    return ", ".join(b for b in bits if b)


def titles_of(surfaces: Sequence[Surface]) -> list[str]:
    """A title for each surface that tells it from the others: :func:`describe`, with the FLOPs
    and the training seed where they differ, and the checkpoint's name where the titles would
    still be alike (two minima of one recipe)."""
    def differ(key: str) -> bool:
        return len({str(_training(s).get(key, "")) for s in surfaces}) > 1

    titles = [describe(s, flops=differ("flops"), seed=differ("seed")) for s in surfaces]
    if len(set(titles)) < len(titles):
        names = [short_path(s.attrs.get("model")) for s in surfaces]
        titles = [f"{t} ({n})" if n else t for t, n in zip(titles, names, strict=True)]
    if len(set(titles)) < len(titles):
        titles = [f"{k + 1}: {t}" for k, t in enumerate(titles)]
    return titles


def shared_scale(surfaces: Sequence[Surface], style: Style = DEFAULT_STYLE, contoured: bool = True) -> mpl.Scale:
    """One scale over the finite values of all ``surfaces`` together; the contours of coarse grids
    start at the lowest value any of them resolves (:func:`landscape.plot.mpl.resolved_floor`); heat
    maps (``contoured=False``) show every point as it is."""
    q = style.quantity
    every = np.concatenate([np.asarray(s.quantity(q), dtype=float).ravel() for s in surfaces])
    floors = [mpl.resolved_floor(s, q) if contoured else None for s in surfaces]
    floor = min(floors) if floors and all(f is not None for f in floors) else None
    return mpl.scale_for(every, style, surfaces[0].label(q), surfaces[0].key(q).endswith("loss"), floor)


def shared_levels(surfaces: Sequence[Surface], style: Style = DEFAULT_STYLE) -> np.ndarray:
    """The levels of :func:`shared_scale`."""
    return shared_scale(surfaces, style).levels


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


def _compare_1d(axes: list[Axes], surfaces, style: Style, titles) -> list:
    overlay = len(axes) < len(surfaces) or len(axes) == 1
    q = style.quantity
    sc = mpl.scale_for(np.concatenate([np.asarray(s.quantity(q), dtype=float) for s in surfaces]), style,
                       surfaces[0].label(q), surfaces[0].key(q).endswith("loss"))
    colors = [f"C{k}" for k in range(len(surfaces))]
    lines, acc_axis = [], None
    for k, (s, title) in enumerate(zip(surfaces, titles, strict=True)):
        ax = axes[0] if overlay else axes[k]
        (line,) = ax.plot(s.x, mpl.masked(s.quantity(q)), "-", color=colors[k], lw=2, label=title)
        lines.append(line)
        acc_key = s.key(q)[: -len("loss")] + "acc" if s.key(q).endswith("loss") else None
        if style.twin and acc_key in s.values:
            if acc_axis is None or not overlay:
                acc_axis = ax.twinx()
                acc_axis.set_ylabel("accuracy (%)")
                acc_axis.set_ylim(0, 100)
            acc_axis.plot(s.x, mpl.masked(s.values[acc_key]), "--", color=colors[k], lw=1.5)
        if not overlay:
            ax.set_title(title, fontsize=9)
    xlim = style.xlim
    lo = min(s.x.min() for s in surfaces) if xlim is None else xlim[0]
    hi = max(s.x.max() for s in surfaces) if xlim is None else xlim[1]
    names = {axis_labels(s)[0] for s in surfaces}
    for ax in axes[:1] if overlay else axes[:len(surfaces)]:
        ax.set_yscale("log" if sc.log else "linear")
        ax.set_ylim(sc.vmin, sc.vmax)
        if sc.log:
            mpl.log_ticks_(ax.yaxis, sc.vmin, sc.vmax)
        ax.set_xlim(lo, hi)
        ax.set_xlabel(names.pop() if len(names) == 1 else "direction 1")
        notes = [n for n, on in (("log scale", sc.log), ("solid", style.twin)) if on]
        ax.set_ylabel(surfaces[0].label(q) + (f" ({', '.join(notes)})" if notes else ""))
    if overlay:  # below the axes: curves near 100 % accuracy or at the loss's top are never hidden
        handles = list(lines)
        if style.twin and acc_axis is not None:
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


def compare(axes, surfaces: Sequence[Surface], style: Style = DEFAULT_STYLE, kind: str = "contour",
            titles: Sequence[str] | None = None, levels: mpl.Scale | None = None) -> list:
    """Draw ``surfaces`` on ``axes`` with one colour scale and common axis ranges, as ``style`` says.

    2D: one panel each, drawn by ``kind`` (contour, contourf or heatmap) with the same levels and
    norm (``levels``: a :class:`landscape.plot.mpl.Scale` to use; default :func:`shared_scale`).
    1D: the curves overlaid on a single axes (``style.twin``: accuracy dashed on a right axis), or
    one per axes with a common y range; a loss over more than two decades on a log axis (``auto``),
    where minima that differ near their bottom are told apart. ``titles``: default :func:`titles_of`.
    Returns the artists, one per surface.
    """
    ndim = _check(surfaces)
    axes = _axes_list(axes, 1 if ndim == 1 else len(surfaces))
    titles = list(titles) if titles is not None else titles_of(surfaces)
    if ndim == 1:
        return _compare_1d(axes, surfaces, style, titles)
    if kind not in KINDS:
        raise LandscapeError(f"unknown plot kind {kind!r} ({', '.join(KINDS)})")
    sc = levels if levels is not None else shared_scale(surfaces, style, kind != "heatmap")
    xlim = (min(s.x.min() for s in surfaces), max(s.x.max() for s in surfaces))
    ylim = (min(s.y.min() for s in surfaces), max(s.y.max() for s in surfaces))
    draw = {"heatmap": mpl.heatmap, "contour": mpl.contour, "contourf": mpl.contourf}[kind]
    artists = []
    for ax, s, title in zip(axes, surfaces, titles, strict=False):
        ax.set_xlim(*xlim)  # before drawing: contour labels are placed inside these limits
        ax.set_ylim(*ylim)
        art = draw(ax, s, style, levels=sc)
        ax.set_xlim(*xlim)
        ax.set_ylim(*ylim)
        ax.set_title(_wrap(title, ax), fontsize=9)
        artists.append(art)
    return artists


def compare_figure(surfaces: Sequence[Surface], style: Style = DEFAULT_STYLE, kind: str = "contour",
                   ncols: int | None = None, titles: Sequence[str] | None = None,
                   panel: tuple[float, float] = (4.0, 3.6)) -> Figure:
    """A figure of :func:`compare`: a grid of panels (2D) or one axes (1D), one colour bar."""
    ndim = _check(surfaces)
    if ndim == 1:
        fig = Figure(figsize=(7, 4.5), layout="constrained")
        compare(fig.subplots(), surfaces, style, titles=titles)
        return fig
    ncols = ncols or min(len(surfaces), 3)
    nrows = -(-len(surfaces) // ncols)
    fig = Figure(figsize=(panel[0] * ncols + 1.2, panel[1] * nrows + 0.3), layout="constrained")
    axes = list(np.ravel(fig.subplots(nrows, ncols, squeeze=False)))
    sc = shared_scale(surfaces, style, kind != "heatmap")
    artists = compare(axes, surfaces, style, kind, titles=titles, levels=sc)
    for ax in axes[len(surfaces):]:
        ax.set_visible(False)
    mpl.colorbar(fig, artists[0], axes[:len(surfaces)], surfaces[0].label(style.quantity), sc, match_height=False,
                 shrink=0.9)
    return fig


__all__ = ["compare", "compare_figure", "describe", "describe_training", "shared_levels", "shared_scale",
           "titles_of"]
