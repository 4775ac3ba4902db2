"""Writing the standard set of figures of a surface file to disk (what ``landscape-plot`` does)."""

from __future__ import annotations

import os
from collections.abc import Sequence

import matplotlib

matplotlib.use("Agg")  # files only; no display needed
import matplotlib.pyplot as plt  # noqa: E402

from landscape.errors import LandscapeError  # noqa: E402
from landscape.plot import mpl  # noqa: E402
from landscape.surface import Surface  # noqa: E402


def _title(surface: Surface) -> str:
    a = surface.attrs
    bits = [str(a.get("arch", "")), str(a.get("dataset", "")), str(a.get("split", ""))]
    if a.get("norm"):
        bits.append(f"norm={a['norm']}")
    return " | ".join(b for b in bits if b)


def _label(quantity: str) -> str:
    return {"loss": "loss", "acc": "accuracy (%)"}.get(quantity, quantity)


def save_figure(fig, prefix: str, name: str, formats: Sequence[str]) -> list[str]:
    """Save ``fig`` as ``{prefix}_{name}.{fmt}`` for each format, close it, return the paths."""
    paths = []
    try:
        for fmt in formats:
            path = f"{prefix}_{name}.{fmt}"
            try:
                fig.savefig(path, dpi=150, bbox_inches="tight")
            except OSError as exc:
                raise LandscapeError(f"cannot write {path!r}: {exc.strerror or exc}") from None
            paths.append(path)
    finally:
        plt.close(fig)
    return paths


def render(surface: Surface, prefix: str, formats: Sequence[str] = ("png", "pdf"),
           levels: int = 30, vmin: float | None = None, vmax: float | None = None,
           log: bool = False, kinds: Sequence[str] | None = None,
           quantity: str = "loss") -> list[str]:
    """Write the figures of ``surface`` as ``{prefix}_{kind}.{fmt}``; return their paths.

    1D: ``1d`` (loss and accuracy). 2D: ``contour``, ``contourf``, ``heatmap``, ``3d``.
    """
    for fmt in formats:
        if fmt not in ("png", "pdf", "svg"):
            raise LandscapeError(f"unknown figure format {fmt!r} (png, pdf, svg)")
    out_dir = os.path.dirname(os.path.abspath(prefix))
    if not os.path.isdir(out_dir):
        raise LandscapeError(f"output folder {out_dir!r} does not exist")
    title = _title(surface)
    paths: list[str] = []
    if surface.ndim == 1:
        fig, ax = plt.subplots(figsize=(6, 4))
        mpl.plot_1d(ax, surface, log=log)
        ax.set_title(title, fontsize=9)
        return save_figure(fig, prefix, "1d", formats)
    wanted = kinds or ("contour", "contourf", "heatmap", "3d")
    for kind in wanted:
        if kind == "3d":
            fig = plt.figure(figsize=(7, 5.5))
            ax = fig.add_subplot(projection="3d")
            art = mpl.surface3d(ax, surface, quantity, vmin=vmin, vmax=vmax, log=log)
            fig.colorbar(art, ax=ax, shrink=0.6, pad=0.1)
        else:
            fig, ax = plt.subplots(figsize=(6, 5))
            draw = {"contour": mpl.contour, "contourf": mpl.contourf, "heatmap": mpl.heatmap}.get(kind)
            if draw is None:
                plt.close(fig)
                raise LandscapeError(f"unknown plot kind {kind!r} (contour, contourf, heatmap, 3d)")
            kw = {"levels": levels} if kind != "heatmap" else {}
            art = draw(ax, surface, quantity, vmin=vmin, vmax=vmax, log=log, **kw)
            fig.colorbar(art, ax=ax, label=_label(quantity))
        ax.set_title(title, fontsize=9)
        paths += save_figure(fig, prefix, kind, formats)
    return paths
