"""Writing the standard set of figures of a surface file to disk (what ``landscape-plot`` does)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import replace

from matplotlib.figure import Figure

from landscape.errors import LandscapeError, one_line
from landscape.io.files import check_folder
from landscape.io.surface_file import Surface
from landscape.plot import mpl
from landscape.plot.style import DEFAULT_STYLE, Style

KINDS = ("contour", "contourf", "heatmap", "3d")
FORMATS = ("png", "pdf", "svg")


MAX_DPI = 1200


def figure_prefix(prefix: str, surface: Surface, quantity: str = "loss") -> str:
    """The prefix of the figures of ``quantity``: ``prefix`` for the default loss, else
    ``prefix_QUANTITY`` (``s_eig_ratio_contour.png``, as the original tool's
    ``s_train_acc_2dcontour``), so that figures of one quantity never replace another's."""
    key = surface.key(quantity)
    if key == surface.key("loss"):
        return prefix
    return f"{prefix}_{re.sub(r'[^A-Za-z0-9_.+-]+', '_', key)}"


def save_figure(fig: Figure, prefix: str, name: str, formats: Sequence[str], dpi: int = 150) -> list[str]:
    """Save ``fig`` as ``{prefix}_{name}.{fmt}`` for each format; return the paths. ``dpi``: 10 to
    ``MAX_DPI`` (a larger one asks for gigabytes of pixels)."""
    if not (isinstance(dpi, int | float) and 10 <= dpi <= MAX_DPI):
        raise LandscapeError(f"the resolution (`dpi`) must be 10 to {MAX_DPI}, got {dpi!r}")
    paths = []
    for fmt in formats:
        path = f"{prefix}_{name}.{fmt}"
        try:
            fig.savefig(path, dpi=dpi, bbox_inches="tight")
        except OSError as exc:
            raise LandscapeError(f"cannot write {path!r}: {one_line(exc.strerror or exc)}") from None
        paths.append(path)
    return paths


def figures(surface: Surface, style: Style = DEFAULT_STYLE, kinds: Sequence[str] | None = None) -> dict[str, Figure]:
    """The standard figures of ``surface`` by name: ``1d`` for a 1D surface, else ``contour``,
    ``contourf``, ``heatmap`` and ``3d`` (or those of ``kinds``), drawn as ``style`` says. No pyplot,
    no global state. Points without a value are hatched and named in a legend below the axes, with
    the evaluated points of an adaptive surface (``style.mark_evaluated``)."""
    title = surface.title()
    if surface.ndim == 1 and surface.attrs.get("kind") == "connect_path":  # a curve and a straight line along t
        from landscape.connect.path import path_result  # torch: only for a curve's path file
        from landscape.plot.connect import path_figure

        kind = surface.attrs.get("curve_kind", "")
        return {"path": path_figure(path_result(surface), f"{title} | {kind} curve and straight line", style)}
    if surface.ndim == 1:
        fig = Figure(figsize=(6, 4), layout="constrained")
        ax = fig.subplots()
        mpl.plot_1d(ax, surface, style)
        if style.mark_evaluated:
            dots = mpl.evaluated_points(ax, surface, style)
            if dots is not None:
                old = ax.get_legend()
                ax.legend(handles=[*(old.legend_handles if old else []), dots], fontsize=8, loc="upper center",
                          bbox_to_anchor=(0.5, -0.14), ncol=2, frameon=False)
        ax.set_title(title, fontsize=9)
        return {"1d": fig}
    if surface.ndim == 3:
        raise LandscapeError("a volume (3 directions) has no static figures: draw it with the VTK or HTML views")
    draws = {"contour": mpl.contour, "contourf": mpl.contourf, "heatmap": mpl.heatmap}
    for kind in kinds or KINDS:
        if kind != "3d" and kind not in draws:
            raise LandscapeError(f"unknown plot kind {kind!r} ({', '.join(KINDS)})")
    sc = mpl.surface_scale(surface, style)
    out = {}
    for kind in kinds or KINDS:
        if kind == "3d":
            fig = Figure(figsize=(7, 5.5), layout="constrained")
            ax = fig.add_subplot(projection="3d")
            # a height on a log scale turns a basin into a spike: 3D is linear unless --log is asked for
            art = mpl.surface3d(ax, surface, style if style.log else replace(style, scale="linear"))
            cbar = fig.colorbar(art, ax=ax, shrink=0.6, pad=0.08)
            label = surface.label(style.quantity)
            cbar.set_label(f"log10 {label}" if style.log else label)
        else:
            fig = Figure(figsize=(6, 5.4), layout="constrained")
            ax = fig.subplots()
            scale = sc if kind != "heatmap" else mpl.surface_scale(surface, style, contoured=False)
            art = draws[kind](ax, surface, style, levels=scale)
            mpl.colorbar(fig, art, ax, surface.label(style.quantity), scale)
            handles = []
            if style.mark_evaluated:
                dots = mpl.evaluated_points(ax, surface, style)
                handles += [dots] if dots is not None else []
            handles += [mpl.missing_handle(m) for m in mpl.mark_missing(ax, surface, style.quantity)]
            if surface.attrs.get("directions_from") == "model2, model3":  # the plane through three models
                mpl.mark_models(ax, surface)
            if handles:
                ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, -0.14), fontsize=8,
                          frameon=False, ncol=min(len(handles), 2))
        ax.set_title(title, fontsize=9)
        out[kind] = fig
    return out


def render(surface: Surface, prefix: str, style: Style = DEFAULT_STYLE, kinds: Sequence[str] | None = None,
           formats: Sequence[str] = ("png", "pdf"), dpi: int = 150) -> list[str]:
    """Write the :func:`figures` of ``surface`` as ``{prefix}_{kind}.{fmt}`` (with the quantity in the
    prefix unless it is the default loss: :func:`figure_prefix`); return their paths."""
    for fmt in formats:
        if fmt not in FORMATS:
            raise LandscapeError(f"unknown figure format {fmt!r} ({', '.join(FORMATS)})")
    check_folder(prefix)  # figures of the same quantity are replaced freely
    prefix = figure_prefix(prefix, surface, style.quantity)
    paths: list[str] = []
    for kind, fig in figures(surface, style, kinds).items():
        paths += save_figure(fig, prefix, kind, formats, dpi)
    return paths
