"""Writing the standard set of figures of a surface file to disk (what ``landscape-plot`` does)."""

from __future__ import annotations

import os
from collections.abc import Sequence

from matplotlib.figure import Figure

from landscape.errors import LandscapeError
from landscape.plot import mpl
from landscape.surface import Surface


def _label(quantity: str) -> str:
    return {"loss": "loss", "acc": "accuracy (%)"}.get(quantity, quantity)


def save_figure(fig: Figure, prefix: str, name: str, formats: Sequence[str], dpi: int = 150) -> list[str]:
    """Save ``fig`` as ``{prefix}_{name}.{fmt}`` for each format; return the paths."""
    paths = []
    for fmt in formats:
        path = f"{prefix}_{name}.{fmt}"
        try:
            fig.savefig(path, dpi=dpi, bbox_inches="tight")
        except OSError as exc:
            raise LandscapeError(f"cannot write {path!r}: {exc.strerror or exc}") from None
        paths.append(path)
    return paths


def figures(surface: Surface, levels: int = 30, vmin: float | None = None, vmax: float | None = None,
            log: bool = False, kinds: Sequence[str] | None = None,
            quantity: str = "loss") -> dict[str, Figure]:
    """The standard figures of ``surface`` by name: ``1d`` for a 1D surface, else ``contour``,
    ``contourf``, ``heatmap`` and ``3d`` (or those of ``kinds``). No pyplot, no global state."""
    title = surface.title()
    if surface.ndim == 1:
        fig = Figure(figsize=(6, 4), layout="constrained")
        ax = fig.subplots()
        mpl.plot_1d(ax, surface, log=log)
        ax.set_title(title, fontsize=9)
        return {"1d": fig}
    draws = {"contour": mpl.contour, "contourf": mpl.contourf, "heatmap": mpl.heatmap}
    out = {}
    for kind in kinds or ("contour", "contourf", "heatmap", "3d"):
        if kind != "3d" and kind not in draws:
            raise LandscapeError(f"unknown plot kind {kind!r} (contour, contourf, heatmap, 3d)")
        fig = Figure(figsize=(7, 5.5) if kind == "3d" else (6, 5))
        if kind == "3d":
            ax = fig.add_subplot(projection="3d")
            art = mpl.surface3d(ax, surface, quantity, vmin=vmin, vmax=vmax, log=log)
            fig.colorbar(art, ax=ax, shrink=0.6, pad=0.1)
        else:
            ax = fig.subplots()
            kw = {"levels": levels} if kind != "heatmap" else {}
            art = draws[kind](ax, surface, quantity, vmin=vmin, vmax=vmax, log=log, **kw)
            mpl.colorbar(fig, art, ax, _label(quantity), log)
        ax.set_title(title, fontsize=9)
        out[kind] = fig
    return out


def render(surface: Surface, prefix: str, formats: Sequence[str] = ("png", "pdf"),
           levels: int = 30, vmin: float | None = None, vmax: float | None = None,
           log: bool = False, kinds: Sequence[str] | None = None,
           quantity: str = "loss", dpi: int = 150) -> list[str]:
    """Write the :func:`figures` of ``surface`` as ``{prefix}_{kind}.{fmt}``; return their paths."""
    for fmt in formats:
        if fmt not in ("png", "pdf", "svg"):
            raise LandscapeError(f"unknown figure format {fmt!r} (png, pdf, svg)")
    out_dir = os.path.dirname(os.path.abspath(prefix))
    if not os.path.isdir(out_dir):
        raise LandscapeError(f"output folder {out_dir!r} does not exist")
    paths: list[str] = []
    for kind, fig in figures(surface, levels, vmin, vmax, log, kinds, quantity).items():
        paths += save_figure(fig, prefix, kind, formats, dpi)
    return paths
